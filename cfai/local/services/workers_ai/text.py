"""Text generation (and vision) stand-in: answers from the context it was given.

The question is the last user turn (its sentences ending in "?", else its last sentence);
the context is every system and tool message, earlier user turns and the rest of the last
user turn. The answer is ``[cfai stand-in]`` followed by the (up to three) context
sentences sharing the most content words with the question, in their original order, so a
RAG worker's answer visibly draws on the retrieved passages. A vision model's answer
starts with a description of the image's bytes (`vision`). Sampling parameters are
validated but do not change the answer: same inputs, same output.

Reasoning models think first: a short deterministic reasoning about the question, then the
answer, both counted against `max_tokens` (tokens are whitespace-separated words, see
`_core`). JSON mode checks the schema with `jsonschema`, returns a value built by `_schema`
(strings filled with the answer) within `max_tokens`, and never streams. With `tools`, the
first tool whose name appears in the last user turn (or the one `tool_choice` forces) is
called, its arguments generated from its JSON Schema by `_schema` (so they validate).
A run with ``lora`` (the service checks the finetune first) answers
``[cfai stand-in] [LoRA <finetune name>] ...``: the adapter shows in every output form.

What the model answers is a `Generation`; `_forms` writes it in the model's own form.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from cfai.catalog import Form, ModelSpec, Reasoning

from . import _forms, _schema
from ._core import AiError, AiResult, bad_input, digest, too_large, words, wordset
from ._generation import Generation, ToolCall
from ._prompt import Turn, check_params, invalid_input, prompt_tokens, tool_functions, turns
from .vision import describe

MARKER = "[cfai stand-in]"
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"[a-z0-9]+")
_STOP = wordset(
    "a an and are as at be by can did do does for from has have how i in is it its me my "
    "of on or our please tell that the their them there these this to was we were what when "
    "where which who whom why will with would you your about context question answer"
)
_EFFORTS = ("low", "medium", "high")


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text) if s and s.strip()]


def _terms(text: str) -> set[str]:
    out = set()
    for w in _WORD.findall(text.lower()):
        if w not in _STOP:
            out.add(w[:-1] if len(w) > 3 and w.endswith("s") else w)
    return out


def _split(conversation: Sequence[Turn]) -> tuple[str, list[str]]:
    """(question, context sentences)."""
    last = max((i for i, t in enumerate(conversation) if t.role == "user"), default=None)
    context: list[str] = []
    for i, turn in enumerate(conversation):
        if turn.role in ("system", "tool") or (turn.role == "user" and i != last):
            context += _sentences(turn.content)
    if last is None:
        return "", context
    own = _sentences(conversation[last].content)
    asked = [s for s in own if s.endswith("?")] or own[-1:]
    return " ".join(asked), context + [s for s in own if s not in asked]


def answer(conversation: Sequence[Turn]) -> tuple[str, str]:
    """(question, answer text): the answer quotes the context most relevant to the question."""
    question, context = _split(conversation)
    q = _terms(question)
    scored = [(len(q & _terms(s)), -i, s) for i, s in enumerate(context)]
    best = sorted((x for x in scored if x[0] > 0), reverse=True)[:3]
    if best:
        picked = [s for _, _, s in sorted(best, key=lambda x: -x[1])]
        return question, f"{MARKER} From the context: {' '.join(picked)}"
    # No match: say plainly that this is a stand-in and why it has nothing to quote (a bare
    # "the context does not mention" read like a broken model to newcomers), echoing the
    # prompt so answers still differ per prompt.
    why = "none of it matches" if context else "none was given"
    return question, (
        f"{MARKER} This is cfai's local stand-in model, not a real one: it answers by quoting "
        f"the context it is given, and {why}. You asked: {question}"
    )


def _reasoning(question: str, effort: str) -> list[str]:
    steps = [f"The user asks: {question or 'nothing in particular.'}"]
    if effort != "low":
        steps.append("I should look for the context sentences that share its key terms.")
    if effort == "high":
        steps.append("Then I answer only from those sentences, quoting them.")
    return words(" ".join(steps))


def _forced_tool(choice: Any, names: list[str]) -> str | None:
    """The tool `tool_choice` forces, "" for none, None for the default (auto)."""
    if choice is None or choice == "auto":
        return None
    if choice == "none":
        return ""
    if choice == "required":
        return names[0] if names else ""
    if isinstance(choice, Mapping):
        fn = choice.get("function", choice)
        name = fn.get("name") if isinstance(fn, Mapping) else None
        if name in names:
            return str(name)
        raise bad_input("tool_choice", f"names no tool of tools ({', '.join(names)})")
    # "any" is refused by Workers AI (cloudflare/ai workers-ai-provider CHANGELOG 3.1.6).
    raise invalid_input("tool_choice", "must be auto, none, required or {type, function}")


def _tool_calls(
    spec: ModelSpec,
    inputs: Mapping[str, Any],
    conversation: Sequence[Turn],
    question: str,
    max_tokens: int,
) -> list[ToolCall]:
    tools = tool_functions(inputs)
    if not tools or not conversation or conversation[-1].role != "user":
        return []
    names = [name for name, _ in tools]
    forced = _forced_tool(inputs.get("tool_choice"), names)
    asked = conversation[-1].content.lower()
    for i, (name, params) in enumerate(tools):
        if forced == "":
            return []
        hit = name.lower() in asked or name.lower().replace("_", " ") in asked
        if forced != name and not (forced is None and hit):
            continue
        try:
            args, _ = _schema.instance(params, question, max_tokens=max_tokens)
        except (_schema.SchemaError, _schema.InvalidSchema) as e:
            raise bad_input(f"tools[{i}].parameters", str(e)) from None
        call_id = "call_" + digest(spec.name, name, json.dumps(args, sort_keys=True)).hex()
        return [ToolCall(call_id, name, args)]
    return []


def _json_mode(inputs: Mapping[str, Any]) -> Any | None:
    """The schema asked for (``{}`` for plain json_object), or None outside JSON mode."""
    fmt = inputs.get("response_format")
    if fmt is None:
        return None
    if not isinstance(fmt, Mapping) or fmt.get("type") not in (
        "json_object",
        "json_schema",
        "text",
    ):
        raise bad_input("response_format.type", "must be json_object, json_schema or text")
    if fmt["type"] == "text":
        return None
    schema = fmt.get("json_schema")
    if isinstance(schema, Mapping) and isinstance(schema.get("schema"), Mapping):
        schema = schema["schema"]  # OpenAI's {name, schema, strict} envelope (gpt-oss, qwen3)
    if schema is None and fmt["type"] == "json_schema":
        raise bad_input("response_format.json_schema", "required when type is json_schema")
    if schema is not None and not isinstance(schema, Mapping):
        raise bad_input("response_format.json_schema", "must be a JSON Schema object")
    return schema if schema is not None else {}


def generate(
    spec: ModelSpec,
    conversation: Sequence[Turn],
    inputs: Mapping[str, Any],
    max_tokens: int,
    effort: str = "medium",
    *,
    adapter: str | None = None,
) -> Generation:
    """What `spec` answers to `conversation` (see the module's docstring). With a LoRA
    `adapter` (the finetune's name) the answer says so right after the marker, in every
    output form, so it differs from the base model's and a test can tell which adapter ran."""
    used = prompt_tokens(conversation)
    if spec.context_window is not None and used > spec.context_window:
        raise too_large(f"{used} prompt tokens exceed the context window of {spec.context_window}")
    seed = json.dumps([spec.name, [(t.role, t.content) for t in conversation]])
    if adapter is not None:
        seed = json.dumps([seed, adapter])  # ids differ from the base model's answer's
    question, text = answer(conversation)
    seen = [describe(img, "image") for t in conversation for img in t.images]
    if seen:
        text = f"{MARKER} {' '.join(seen)} {text[len(MARKER) + 1 :]}"
    if adapter is not None:
        text = f"{MARKER} [LoRA {adapter}]{text[len(MARKER) :]}"
    base = Generation(spec.name, [], prompt_tokens=used, max_tokens=max_tokens, seed=seed)
    schema = _json_mode(inputs)
    if schema is not None:
        try:
            value, size = _schema.instance(
                schema or {"type": "object", "properties": {"response": {}}},
                text,
                max_tokens=max_tokens,
            )
        except _schema.InvalidSchema as e:
            raise bad_input(
                "response_format.json_schema", f"not a valid JSON Schema: {e}"
            ) from None
        except _schema.SchemaError as e:
            raise AiError(400, 3003, f"JSON Mode couldn't be met: {e}") from None
        return replace(base, value=value, json_mode=True, completion_tokens=size)
    calls = _tool_calls(spec, inputs, conversation, question, max_tokens)
    if calls:
        size = min(max_tokens, len(words(json.dumps([c.arguments for c in calls]))))
        return replace(base, calls=calls, completion_tokens=size)
    thinking: list[str] = []
    if spec.reasoning is not Reasoning.NONE:
        thinking = _reasoning(question, effort)[:max_tokens]
    # "</think>" is a token of its own, when there is room left for it.
    tag = int(spec.reasoning is Reasoning.THINK_TAG and 0 < len(thinking) < max_tokens)
    kept = words(text)[: max_tokens - len(thinking) - tag]
    spent = len(thinking) + tag + len(kept)
    return replace(base, answer=kept, reasoning=thinking, completion_tokens=spent)


def run_text(spec: ModelSpec, inputs: Mapping[str, Any], *, adapter: str | None = None) -> AiResult:
    """Text generation in the model's form (`_forms`): native ``{response, tool_calls?,
    usage}`` or SSE, or OpenAI ``chat.completion`` (qwen3, granite, gpt-oss messages); not
    gpt-oss's Responses API answer for an ``input`` (`gpt_oss.run_generation`). A LoRA
    `adapter` is applied by `generate`."""
    conversation = turns(spec, inputs)
    max_tokens = check_params(spec, inputs)
    effort = inputs.get("reasoning_effort") or "medium"
    if effort not in _EFFORTS:
        raise bad_input("reasoning_effort", f"must be one of {', '.join(_EFFORTS)}")
    gen = generate(spec, conversation, inputs, max_tokens, str(effort), adapter=adapter)
    # gpt-oss does not stream over /ai/run: it answers JSON even when asked to stream
    # (cloudflare/ai, packages/workers-ai-provider/src/utils.ts).
    stream = bool(inputs.get("stream")) and not gen.json_mode and spec.streams
    if spec.form is Form.CHAT_COMPLETION or (spec.form is Form.GPT_OSS and "messages" in inputs):
        return _forms.chat_completion(spec, gen, stream=stream, prompt="prompt" in inputs)
    return _forms.native(spec, gen, stream=stream)
