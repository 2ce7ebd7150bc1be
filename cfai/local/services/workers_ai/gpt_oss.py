"""gpt-oss-120b and gpt-oss-20b in OpenAI's Responses API form.

Inputs (the model pages' Responses schema, https://developers.cloudflare.com/workers-ai/models/gpt-oss-120b/):
``input`` (a string, or an array of ``{role, content}`` messages and
``{type: "function_call_output", call_id, output}`` items), ``instructions``,
``reasoning: {effort: low|medium|high, summary?}``, ``tools`` (Responses function tools
``{type: "function", name, description, parameters}``), ``tool_choice``,
``max_output_tokens``, ``text.format`` (JSON mode). Streaming is refused: the Responses
form does not stream on Workers AI (cloudflare/cloudflare-docs#32116).

Output: ``{id, object: "response", created_at, model, status, output, output_text, usage}``
whose ``output`` holds a ``reasoning`` item (the reasoning text) and then either an
assistant ``message`` with one ``output_text`` part or ``function_call`` items whose
``arguments`` is JSON text; ``usage`` counts ``input_tokens`` and ``output_tokens``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from cfai.catalog import Form, ModelSpec

from ._core import AiResult, bad_input, check_str, digest, opt_int
from ._generation import Generation
from ._prompt import Turn, invalid_input
from .text import generate, run_text

_EFFORTS = ("low", "medium", "high")


def _input_turns(value: Any) -> list[Turn]:
    if isinstance(value, str):
        return [Turn("user", check_str(value, "input"))]
    if not isinstance(value, list) or not value:
        raise bad_input("input", "must be a string or a non-empty array of input items")
    out = []
    for i, item in enumerate(value):
        at = f"input[{i}]"
        if not isinstance(item, Mapping):
            raise bad_input(at, "must be an object")
        if item.get("type") == "function_call_output":
            out.append(Turn("tool", check_str(item.get("output", ""), f"{at}.output", min_len=0)))
            continue
        if item.get("type") in ("function_call", "reasoning"):
            continue  # the model's own earlier items, echoed back by the client
        role = item.get("role")
        if role not in ("user", "assistant", "system", "developer"):
            raise bad_input(f"{at}.role", "must be user, assistant, system or developer")
        content = item.get("content")
        if isinstance(content, list):
            texts = [p.get("text", "") for p in content if isinstance(p, Mapping)]
            content = "\n".join(str(t) for t in texts)
        text = check_str(content if content is not None else "", f"{at}.content", min_len=0)
        out.append(Turn("system" if role == "developer" else str(role), text))
    return out


def _native_inputs(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The Responses fields the generator shares with chat: tools, tool_choice, JSON mode."""
    native: dict[str, Any] = {}
    if inputs.get("tools") is not None:
        native["tools"] = inputs["tools"]
    if inputs.get("tool_choice") is not None:
        native["tool_choice"] = inputs["tool_choice"]
    text = inputs.get("text")
    fmt = text.get("format") if isinstance(text, Mapping) else None
    if isinstance(fmt, Mapping) and fmt.get("type") == "json_schema":
        native["response_format"] = {"type": "json_schema", "json_schema": fmt.get("schema")}
    elif isinstance(fmt, Mapping) and fmt.get("type") == "json_object":
        native["response_format"] = {"type": "json_object"}
    return native


def run_generation(
    spec: ModelSpec, inputs: Mapping[str, Any], *, adapter: str | None = None
) -> AiResult:
    """Every text model's handler: gpt-oss's Responses form for an ``input``, else
    `text.run_text` (prompt or messages); a LoRA `adapter` applies in either."""
    if spec.form is Form.GPT_OSS and inputs.get("input") is not None:
        return run_responses(spec, inputs, adapter=adapter)
    return run_text(spec, inputs, adapter=adapter)


def run_responses(
    spec: ModelSpec, inputs: Mapping[str, Any], *, adapter: str | None = None
) -> AiResult:
    """A Responses API request to gpt-oss: ``{input, instructions?, reasoning?, ...}``."""
    if inputs.get("stream"):
        raise invalid_input("stream", "the Responses API form of gpt-oss does not stream")
    conversation = _input_turns(inputs["input"])
    if inputs.get("instructions") is not None:
        conversation.insert(0, Turn("system", check_str(inputs["instructions"], "instructions")))
    reasoning = inputs.get("reasoning") or {}
    if not isinstance(reasoning, Mapping):
        raise bad_input("reasoning", "must be {effort, summary?}")
    effort = reasoning.get("effort") or "medium"
    if effort not in _EFFORTS:
        raise bad_input(
            "reasoning.effort", "must be low, medium or high (reasoning cannot be disabled)"
        )
    limit = {"max_tokens": inputs.get("max_output_tokens")}
    max_tokens = opt_int(limit, "max_tokens", spec.default_max_tokens, 1, spec.context_window)
    native = _native_inputs(inputs)
    gen = generate(spec, conversation, native, max_tokens, str(effort), adapter=adapter)
    return AiResult.json(response_object(spec, gen), gen.usage)


def response_object(spec: ModelSpec, gen: Generation) -> dict[str, Any]:
    """The Responses API answer of `gen`."""
    key = digest(gen.seed, size=12).hex()
    output: list[dict[str, Any]] = [
        {
            "type": "reasoning",
            "id": f"rs_{key}",
            "summary": [],
            "content": [{"type": "reasoning_text", "text": " ".join(gen.reasoning)}],
        }
    ]
    text = json.dumps(gen.value) if gen.json_mode else gen.text
    if gen.calls:
        output += [
            {
                "type": "function_call",
                "id": f"fc_{c.id.removeprefix('call_')}",
                "call_id": c.id,
                "name": c.name,
                "arguments": json.dumps(c.arguments),
                "status": "completed",
            }
            for c in gen.calls
        ]
    else:
        output.append(
            {
                "type": "message",
                "id": f"msg_{key}",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        )
    usage = gen.usage
    return {
        "id": f"resp_{key}",
        "object": "response",
        "created_at": int(time.time()),
        "model": spec.name,
        "status": "completed",
        "output": output,
        "output_text": "" if gen.calls else text,
        "usage": {
            "input_tokens": usage["prompt_tokens"],
            "output_tokens": usage["completion_tokens"],
            "total_tokens": usage["total_tokens"],
        },
    }
