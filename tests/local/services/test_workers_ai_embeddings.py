"""Embedding stand-ins: real dimensions, lexical similarity, pooling spaces, batch limits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cfai.catalog import CATALOG, Task, models_for
from cfai.local.services.base import EmulatorContext
from cfai.local.services.workers_ai import AiError, WorkersAIService

BGE_SMALL = "@cf/baai/bge-small-en-v1.5"
QWEN3 = "@cf/qwen/qwen3-embedding-0.6b"


@pytest.fixture
def ai(tmp_path: Path) -> WorkersAIService:
    return WorkersAIService(EmulatorContext(state_dir=tmp_path, account_id="a" * 32, api_token="t"))


def _vectors(ai: WorkersAIService, model: str, texts: list[str], **extra: object) -> np.ndarray:
    out = ai.run(model, {"text": texts, **extra})
    return np.asarray(out.result["data"])


@pytest.mark.parametrize("model", models_for(Task.TEXT_EMBEDDINGS))
def test_embeddings_shape_matches_catalog_dimensions(ai: WorkersAIService, model: str) -> None:
    out = ai.run(model, {"text": ["one text", "another text"]})
    dims = CATALOG[model].dimensions
    assert out.content_type == "application/json"
    assert out.result["shape"] == [2, dims]
    assert [len(v) for v in out.result["data"]] == [dims, dims]
    assert np.allclose(np.linalg.norm(out.result["data"], axis=1), 1.0)


def test_embeddings_single_string_gives_one_row_and_mean_pooling(ai: WorkersAIService) -> None:
    out = ai.run(BGE_SMALL, {"text": "hello world"})
    assert out.result["shape"] == [1, 384]
    assert out.result["pooling"] == "mean"


def test_embeddings_similar_texts_score_higher_than_unrelated(ai: WorkersAIService) -> None:
    query, near, far = _vectors(
        ai,
        BGE_SMALL,
        [
            "How do I reset my account password?",
            "To reset your password, open account settings and choose reset password.",
            "Bananas ripen faster when stored next to apples.",
        ],
    )
    assert query @ near > query @ far + 0.2


def test_embeddings_retrieval_ranks_the_relevant_document_first(ai: WorkersAIService) -> None:
    docs = [
        "Vectorize stores embeddings and answers nearest neighbour queries.",
        "AI Gateway caches responses and enforces rate limits.",
        "Workers AI runs models such as llama and whisper on Cloudflare's network.",
    ]
    matrix = _vectors(ai, BGE_SMALL, docs)
    (query,) = _vectors(ai, BGE_SMALL, ["which service caches responses and rate limits?"])
    assert int(np.argmax(matrix @ query)) == 1


def test_embeddings_are_deterministic_across_calls(ai: WorkersAIService) -> None:
    first = ai.run(BGE_SMALL, {"text": ["same input"]}).result
    assert ai.run(BGE_SMALL, {"text": ["same input"]}).result == first


def test_embeddings_cls_pooling_differs_from_mean(ai: WorkersAIService) -> None:
    (mean,) = _vectors(ai, BGE_SMALL, ["pooling changes the vector"])
    cls_out = ai.run(BGE_SMALL, {"text": ["pooling changes the vector"], "pooling": "cls"})
    (cls,) = np.asarray(cls_out.result["data"])
    assert cls_out.result["pooling"] == "cls"
    assert abs(float(mean @ cls)) < 0.5


def test_embeddings_batch_over_limit_is_rejected_naming_text(ai: WorkersAIService) -> None:
    with pytest.raises(AiError) as err:
        ai.run(BGE_SMALL, {"text": ["t"] * 101})
    assert (err.value.status, err.value.internal_code) == (400, 3003)
    assert "text" in err.value.message and "100" in err.value.message


@pytest.mark.parametrize(
    ("inputs", "field"),
    [
        ({}, "text"),
        ({"text": 5}, "text"),
        ({"text": ["ok", 3]}, "text[1]"),
        ({"text": "x", "pooling": "max"}, "pooling"),
    ],
)
def test_embeddings_bad_inputs_name_the_field(
    ai: WorkersAIService, inputs: dict[str, object], field: str
) -> None:
    with pytest.raises(AiError) as err:
        ai.run(BGE_SMALL, inputs)
    assert err.value.internal_code == 3003
    assert f"{field}:" in err.value.message


def test_qwen3_embeds_queries_then_documents_so_queries_find_documents(
    ai: WorkersAIService,
) -> None:
    out = ai.run(
        QWEN3,
        {
            "queries": ["capital city of France"],
            "documents": ["Paris is the capital city of France.", "Llamas live in the Andes."],
            "instruction": "Given a question, retrieve passages that answer it",
        },
    )
    assert out.result["shape"] == [3, 1024]
    assert "pooling" not in out.result
    q, paris, llamas = np.asarray(out.result["data"])
    assert q @ paris > q @ llamas


def test_qwen3_batch_limit_is_32_and_needs_some_input(ai: WorkersAIService) -> None:
    with pytest.raises(AiError) as too_many:
        ai.run(QWEN3, {"documents": ["d"] * 33})
    with pytest.raises(AiError) as empty:
        ai.run(QWEN3, {"instruction": "only an instruction"})
    assert too_many.value.internal_code == empty.value.internal_code == 3003
