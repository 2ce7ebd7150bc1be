"""Translation and text classification stand-ins.

m2m100 "translates" by tagging: ``[fr] <text>`` (the target language code, then the text
unchanged), so a caller can see the request reached the model with the right language.
distilbert-sst-2 scores sentiment from two small word lists: each positive word pushes
the logit up, each negative word down; the two scores sum to 1.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from cfai.catalog import ModelSpec

from ._core import AiResult, opt_str, req_str, usage, words, wordset

_POSITIVE = wordset(
    "good great excellent amazing love loved lovely like liked best happy wonderful fantastic "
    "awesome nice enjoy enjoyed brilliant perfect delightful pleasant superb fast helpful "
    "beautiful recommend glad fun favourite favorite works"
)
_NEGATIVE = wordset(
    "bad terrible awful horrible hate hated worst poor sad boring broken slow useless ugly "
    "disappointing disappointed annoying wrong fail failed fails failure angry waste "
    "mediocre buggy crash crashes"
)
_NEGATORS = wordset("not no never isn't wasn't don't doesn't didn't can't cannot")
_WORD = re.compile(r"[a-z']+")


def run_translation(spec: ModelSpec, inputs: Mapping[str, Any]) -> AiResult:
    text = req_str(inputs, "text")
    target = req_str(inputs, "target_lang", max_len=32)
    opt_str(inputs, "source_lang", "en")
    n = len(words(text))
    return AiResult.json({"translated_text": f"[{target}] {text}"}, usage(n, n + 1))


def sentiment(text: str) -> float:
    """P(positive) in (0, 1); 0.5 when no listed word appears."""
    logit, flip = 0.0, False
    for tok in _WORD.findall(text.lower()):
        if tok in _NEGATORS:
            flip = True
            continue
        step = 1.5 if tok in _POSITIVE else -1.5 if tok in _NEGATIVE else 0.0
        logit += -step if flip else step
        if step:
            flip = False
    return 1 / (1 + math.exp(-logit))


def run_classification(spec: ModelSpec, inputs: Mapping[str, Any]) -> AiResult:
    text = req_str(inputs, "text")
    pos = sentiment(text)
    result = [{"label": "NEGATIVE", "score": 1 - pos}, {"label": "POSITIVE", "score": pos}]
    return AiResult.json(result, usage(len(words(text))))
