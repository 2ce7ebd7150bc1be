"""JSON mode: the schema is checked with jsonschema, the stand-in's answer validates against
it, and the answer is bounded by max_tokens like the real model's.

Issue 11 row "JSON mode output unbounded": ``minItems: 1500`` of ``minItems: 1500`` strings
gave a 117 MB body and ``minItems: 100000000`` ran until killed; both must be a clear error,
quickly, with bounded memory.
"""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from cfai.local.services import EmulatorContext
from cfai.local.services.frontdoor import FrontDoor
from cfai.local.services.workers_ai import AiError, WorkersAIService

LLAMA = "@cf/meta/llama-3.1-8b-instruct"
ACCOUNT = "a" * 32
CONTEXT = "Context: The Eiffel Tower is 330 metres tall. Paris is the capital of France."
QUESTION = "How tall is the Eiffel Tower?"


@pytest.fixture
def ai(tmp_path: Path) -> WorkersAIService:
    return WorkersAIService(EmulatorContext(tmp_path, ACCOUNT, "t"))


def run(ai: WorkersAIService, schema: Any, **extra: Any) -> Any:
    inputs = {
        "messages": [{"role": "system", "content": CONTEXT}, {"role": "user", "content": QUESTION}],
        "response_format": {"type": "json_schema", "json_schema": schema},
        **extra,
    }
    return ai.run(LLAMA, inputs).result


def tokens(value: Any) -> int:
    return len(json.dumps(value).split())


SQUARE = {
    "type": "array",
    "minItems": 1500,
    "items": {"type": "array", "minItems": 1500, "items": {"type": "string"}},
}


@pytest.mark.parametrize(
    "schema", [SQUARE, {"type": "array", "minItems": 100_000_000}], ids=["1500x1500", "1e8"]
)
def test_an_answer_longer_than_max_tokens_is_a_clear_error_in_bounded_memory(
    ai: WorkersAIService, schema: Any
) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(AiError) as err:
            run(ai, schema)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (err.value.status, err.value.code) == (400, 3003)
    assert (
        "JSON Mode couldn't be met" in err.value.message and "max_tokens=256" in err.value.message
    )
    assert peak < 8 * 1024 * 1024  # the old answer to SQUARE alone was 117 MB


def test_the_same_over_rest_is_a_400_envelope(ai: WorkersAIService) -> None:
    app = FrontDoor(account_id=ACCOUNT, api_token="t", binding_key=None).app(ai.endpoints())
    with TestClient(app) as client:
        r = client.post(
            f"/client/v4/accounts/{ACCOUNT}/ai/run/{LLAMA}",
            json={"prompt": "x", "response_format": {"type": "json_schema", "json_schema": SQUARE}},
            headers={"authorization": "Bearer t"},
        )
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == 3003


def test_max_tokens_bounds_the_answer_and_usage_counts_it(ai: WorkersAIService) -> None:
    schema = {"type": "array", "minItems": 40, "items": {"type": "string"}}
    small = run(ai, schema, max_tokens=60)
    # Too long with the whole answer in every string: the strings are shortened to fit.
    assert len(small["response"]) == 40 and tokens(small["response"]) <= 60
    assert small["usage"]["completion_tokens"] == tokens(small["response"])
    with pytest.raises(AiError, match="max_tokens=30"):
        run(ai, schema, max_tokens=30)
    with pytest.raises(AiError, match="max_tokens"):
        run(ai, {"type": "string", "minLength": 10_000_000})


@pytest.mark.parametrize(
    ("schema", "where"),
    [
        ({"type": "integer", "multipleOf": 0}, "multipleOf"),
        ({"anyOf": []}, "anyOf"),
        ({"type": "array", "minItems": None}, "minItems"),
        ({"type": "strnig"}, "type"),
        ({"properties": {"a": {"minimum": "1"}}}, "properties/a/minimum"),
    ],
)
def test_an_invalid_schema_is_refused_naming_the_keyword(
    ai: WorkersAIService, schema: Any, where: str
) -> None:
    with pytest.raises(AiError) as err:
        run(ai, schema)
    assert (err.value.status, err.value.code) == (400, 3003)
    assert "response_format.json_schema" in err.value.message and where in err.value.message


KEYWORDS: dict[str, Any] = {
    "type": "object",
    "$defs": {
        "page": {"type": "integer", "minimum": 1, "multipleOf": 5},
        "tag": {"enum": ["alpha", "beta"]},
    },
    "properties": {
        "answer": {"type": "string", "maxLength": 24},
        "page": {"$ref": "#/$defs/page"},
        "pair": {
            "type": "array",
            "prefixItems": [{"const": "x"}, {"type": "number", "exclusiveMinimum": 2.5}],
            "items": False,
        },
        "tags": {
            "type": "array",
            "items": {"$ref": "#/$defs/tag"},
            "minItems": 2,
            "uniqueItems": True,
        },
        "either": {
            "anyOf": [{"type": "integer", "minimum": 10, "maximum": 5}, {"type": "boolean"}]
        },
        "one": {"oneOf": [{"type": "string", "maxLength": 0}, {"type": "string", "minLength": 3}]},
        "both": {"allOf": [{"properties": {"a": {"type": "null"}}}, {"required": ["b"]}]},
        "score": {"type": "number", "minimum": 0.5, "maximum": 0.5},
        "step": {"type": "number", "multipleOf": 0.25, "exclusiveMinimum": 1},
        "maybe": {"type": ["null", "integer"]},
        "kind": {"const": {"nested": [1, 2]}},
        "loose": {
            "type": "object",
            "minProperties": 2,
            "additionalProperties": {"type": "integer"},
        },
    },
    "required": ["answer", "page"],
    "additionalProperties": False,
}


def test_every_keyword_the_validator_accepts_gives_a_valid_answer(ai: WorkersAIService) -> None:
    out = run(ai, KEYWORDS, max_tokens=512)["response"]
    jsonschema.validate(out, KEYWORDS)
    assert out["answer"].startswith("[cfai stand-in]") and len(out["answer"]) <= 24
    assert out["page"] % 5 == 0 and out["pair"][0] == "x" and out["pair"][1] > 2.5
    assert len(set(out["tags"])) == 2 and out["either"] in (True, False)
    assert out["kind"] == {"nested": [1, 2]} and out["score"] == 0.5


def test_a_schema_that_cannot_be_met_says_so(ai: WorkersAIService) -> None:
    for schema in (
        {"type": "string", "pattern": "^[0-9]+$"},
        {"type": "integer", "minimum": 3, "maximum": 2},
        {"not": {"type": "string"}},
        {"$ref": "#/$defs/missing"},
        {
            "$ref": "#/$defs/r",
            "$defs": {"r": {"type": "object", "properties": {"r": {"$ref": "#/$defs/r"}}}},
        },
    ):
        with pytest.raises(AiError, match="JSON Mode couldn't be met"):
            run(ai, schema)


# -- any schema the generator accepts, it meets -------------------------------------------------

_leaf = st.one_of(
    st.fixed_dictionaries(
        {"type": st.just("string")},
        optional={"minLength": st.integers(0, 30), "maxLength": st.integers(0, 30)},
    ),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["integer", "number"])},
        optional={
            "minimum": st.integers(-50, 50),
            "maximum": st.integers(-50, 50),
            "exclusiveMinimum": st.floats(-50, 50),
            "multipleOf": st.sampled_from([1, 2, 3, 0.5, 0.1, 7]),
        },
    ),
    st.fixed_dictionaries({"type": st.sampled_from(["boolean", "null"])}),
    st.fixed_dictionaries(
        {
            "enum": st.lists(
                st.one_of(st.integers(), st.text(max_size=5), st.none()), min_size=1, max_size=4
            )
        }
    ),
    st.fixed_dictionaries({"const": st.one_of(st.integers(), st.text(max_size=5), st.booleans())}),
    st.just({"$ref": "#/$defs/shared"}),
    st.just({}),
)


def _grow(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.fixed_dictionaries(
            {"type": st.just("array"), "items": children},
            optional={
                "minItems": st.integers(0, 4),
                "maxItems": st.integers(0, 6),
                "uniqueItems": st.booleans(),
                "prefixItems": st.lists(children, min_size=1, max_size=2),
            },
        ),
        st.dictionaries(st.text("abcdefgh", min_size=1, max_size=4), children, max_size=4).flatmap(
            lambda props: st.fixed_dictionaries(
                {"type": st.just("object"), "properties": st.just(props)},
                optional={
                    "required": st.lists(st.sampled_from(sorted(props) or ["a"]), unique=True),
                    "additionalProperties": st.booleans(),
                },
            )
        ),
        st.fixed_dictionaries({"anyOf": st.lists(children, min_size=1, max_size=3)}),
        st.fixed_dictionaries({"oneOf": st.lists(children, min_size=1, max_size=3)}),
        st.fixed_dictionaries({"allOf": st.lists(children, min_size=1, max_size=2)}),
    )


SCHEMAS = st.recursive(_leaf, _grow, max_leaves=12).map(
    lambda s: (
        {**s, "$defs": {"shared": {"type": "integer", "multipleOf": 4, "minimum": 3}}}
        if isinstance(s, dict)
        else s
    )
)


@given(schema=SCHEMAS, max_tokens=st.integers(1, 300))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_whatever_the_generator_answers_validates_and_fits(schema: Any, max_tokens: int) -> None:
    ai = WorkersAIService(EmulatorContext(Path("/nonexistent"), ACCOUNT, "t"))
    try:
        out = run(ai, schema, max_tokens=max_tokens)
    except AiError as err:
        assert err.status == 400 and err.code == 3003
        if "not a valid JSON Schema" in err.message:  # then jsonschema says so too
            with pytest.raises(jsonschema.SchemaError):
                jsonschema.Draft202012Validator.check_schema(schema)
        else:
            assert "JSON Mode couldn't be met" in err.message
        return
    jsonschema.validate(out["response"], schema)
    assert tokens(out["response"]) == out["usage"]["completion_tokens"] <= max_tokens
