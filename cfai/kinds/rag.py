"""The rag kind: `/documents` ingest and delete, `/query` answers with its sources.

Documents are chunked, embedded with `embedding_model` and written to a Vectorize index;
a question is embedded the same way, its `top_k` nearest chunks become the context of the
answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import MappingProxyType
from typing import Literal

from pydantic import Field, model_validator

from cfai.catalog import CATALOG, Catalog, Task
from cfai.errors import Problem
from cfai.kinds._support import (
    TextGenerationConfig,
    ai_bindings,
    declared_task,
    gateway_binding,
    model_problems,
    render_spec,
    text_generation_problems,
    tokens,
    traits_binding,
    unknown,
)
from cfai.kinds.base import (
    HEALTH,
    Binding,
    CheckContext,
    Example,
    Kind,
    KindCost,
    ModelUse,
    RenderContext,
    Rendering,
    Route,
)
from cfai.kinds.pricing import CHARS_PER_TOKEN, DEFAULT_USER_TOKENS, Traffic, priced
from cfai.outputs import Outputs, WorkerOutput

__all__ = [
    "KIND",
    "MAX_CHUNKS_PER_DOCUMENT",
    "VECTORIZE_TOP_K_WITH_METADATA",
    "RagKind",
    "RagWorkerConfig",
]

# Vectorize caps topK at 50 when metadata or values are returned (the rag Worker reads each
# match's text from its metadata): https://developers.cloudflare.com/vectorize/platform/limits/
VECTORIZE_TOP_K_WITH_METADATA = 50
# Vectorize ids are at most 64 bytes; chunk ids are "<document id>#<n>" with n < this.
MAX_CHUNKS_PER_DOCUMENT = 100  # one deleteByIds call (Vectorize takes at most 100 ids)


class RagWorkerConfig(TextGenerationConfig):
    """A retrieval Worker: `/documents` ingest and delete, `/query` answer with sources."""

    kind: Literal["rag"] = "rag"
    embedding_model: str = "@cf/baai/bge-base-en-v1.5"
    index: str
    system_prompt: str = Field(
        "Answer the question using only the context. Say so when the context does not contain the answer.",
        max_length=131_072,
    )
    top_k: int = Field(3, ge=1, description="matches fed to the model; at most 50")
    chunk_size: int = Field(800, ge=64, le=8000, description="characters per chunk")
    chunk_overlap: int = Field(100, ge=0, description="characters shared by neighbouring chunks")
    pooling: Literal["mean", "cls"] = "mean"

    @model_validator(mode="after")
    def _overlap(self) -> RagWorkerConfig:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(
                f"chunk_overlap ({self.chunk_overlap}) must be smaller than chunk_size ({self.chunk_size})"
            )
        return self


def _every(worker: WorkerOutput, outputs: Outputs) -> bool:
    return True


class RagKind(Kind[RagWorkerConfig]):
    name = "rag"
    playground = True
    config = RagWorkerConfig
    template = "workers/rag.js.j2"
    routes = (
        HEALTH,
        Route("POST", "/documents", summary="chunk, embed and store documents"),
        Route("DELETE", "/documents/{id}", summary="delete a document's chunks"),
        Route("POST", "/query", summary="answer a question with the matching chunks as sources"),
        Route(
            "POST", "/v1/embeddings", summary="OpenAI-compatible embeddings (the index's vectors)"
        ),
    )
    main_route = routes[3]
    examples = (
        Example("POST", "/query", {"question": "How does gateway caching work?"}),
        Example("POST", "/v1/embeddings", {"input": ["gateway caching", "vectorize filters"]}),
    )
    example = Example("POST", "/query", {"question": "How does gateway caching work?"})
    checks = ("test_rag.py", "test_playground.py")
    selections = MappingProxyType({"rag_worker": _every})

    def model_uses(self, worker: RagWorkerConfig) -> tuple[ModelUse, ...]:
        return (
            ModelUse("model", worker.model, Task.TEXT_GENERATION, "a rag worker"),
            ModelUse(
                "embedding_model", worker.embedding_model, Task.TEXT_EMBEDDINGS, "a rag worker"
            ),
        )

    def problems(self, key: str, worker: RagWorkerConfig, ctx: CheckContext) -> Iterator[Problem]:
        base = f"workers.{key}"
        if worker.index not in ctx.indexes:
            yield unknown(f"{base}.index", "index", worker.index, ctx.indexes)
        # `task: text-embeddings` vouches for the embedding model, not for the answering one.
        yield from text_generation_problems(key, worker, ctx)
        spec, problems = model_problems(
            f"{base}.embedding_model",
            worker.embedding_model,
            Task.TEXT_EMBEDDINGS,
            "a rag worker",
            ctx.catalog,
            declared_task(worker),
        )
        yield from problems
        dimensions = ctx.index_dimensions.get(worker.index)
        # A declared model's dimensions are unknown: it must fit its index (a notice says so).
        if spec and spec.dimensions and dimensions is not None and spec.dimensions != dimensions:
            yield Problem(
                f"{base}.index",
                f"index {worker.index!r} has {dimensions} dimensions but embedding model "
                f"{worker.embedding_model!r} makes {spec.dimensions}; use an index of "
                f"{spec.dimensions} dimensions or another embedding model",
            )
        if worker.top_k > VECTORIZE_TOP_K_WITH_METADATA:
            yield Problem(
                f"{base}.top_k",
                f"top_k {worker.top_k} exceeds Vectorize's topK limit of "
                f"{VECTORIZE_TOP_K_WITH_METADATA} when metadata is returned",
            )
        if worker.pooling == "cls" and spec and spec.known and "cls" not in spec.poolings:
            yield Problem(
                f"{base}.pooling", "pooling 'cls' is only offered by the @cf/baai/bge-* models"
            )

    def notices(self, key: str, worker: RagWorkerConfig, ctx: CheckContext) -> Iterator[Problem]:
        yield from super().notices(key, worker, ctx)
        if (
            worker.embedding_model not in ctx.catalog
            and declared_task(worker) is Task.TEXT_EMBEDDINGS
        ):
            yield Problem(
                f"workers.{key}.index",
                f"index {worker.index!r} takes vectors of its own dimensions; cfai cannot "
                f"check that {worker.embedding_model!r} makes them",
            )

    def render(self, key: str, worker: RagWorkerConfig, ctx: RenderContext) -> Rendering:
        answerer, embedder = (
            render_spec(use, key, worker, ctx.catalog) for use in self.model_uses(worker)
        )
        gateway = gateway_binding(worker, ctx)
        return Rendering(
            bindings=(
                *ai_bindings(worker.model),
                traits_binding(answerer),
                *gateway,
                Binding("plain_text", "EMBEDDING_MODEL", text=worker.embedding_model),
                Binding("vectorize", "VECTORIZE", index_name=ctx.physical_name(worker.index)),
            ),
            models=(worker.model, worker.embedding_model),
            gateway=gateway[0].text if gateway else None,
            context={"max_chunks": MAX_CHUNKS_PER_DOCUMENT},
            settings={
                "SYSTEM_PROMPT": worker.system_prompt,
                "MAX_TOKENS": worker.max_tokens,
                "TEMPERATURE": worker.temperature,
                "TOP_K": worker.top_k,
                "CHUNK_SIZE": worker.chunk_size,
                "CHUNK_OVERLAP": worker.chunk_overlap,
                "POOLING": worker.pooling,
                "EMBED_BATCH": min(embedder.max_batch or 100, 100),
                **({"DIMENSIONS": embedder.dimensions} if embedder.dimensions else {}),
            },
        )

    def cost(
        self,
        key: str,
        worker: RagWorkerConfig,
        traffic: Traffic,
        catalog: Catalog | None = None,
    ) -> KindCost:
        catalog = catalog or CATALOG
        n, t = traffic.requests_per_day, tokens(worker.system_prompt, worker.max_tokens, traffic)
        question = (
            max(1, t.tokens_in - t.system) if traffic.tokens_in is not None else DEFAULT_USER_TOKENS
        )
        context = worker.top_k * worker.chunk_size // CHARS_PER_TOKEN
        items = [
            *priced(worker.embedding_model, {"input_tokens": question * n}, catalog),
            *priced(
                worker.model,
                {"input_tokens": (t.tokens_in + context) * n, "output_tokens": t.tokens_out * n},
                catalog,
            ),
        ]
        said = (
            f"{key} (rag): embeds a {question}-token question with {worker.embedding_model}; "
            f"{worker.model} reads {t.tokens_in} + {context} context tokens "
            f"(top_k {worker.top_k} x chunk_size {worker.chunk_size} / {CHARS_PER_TOKEN}) "
            f"= {t.tokens_in + context} in, writes {t.said_out} out per request; "
            "document ingestion not included"
        )
        return KindCost(tuple(items), (said,))


KIND = RagKind()
