"""Reading a text model's inputs: the turns of the conversation, its images, its parameters.

``prompt`` or ``messages`` (exactly one); a message's ``content`` is a string, a list of
content parts, or (mistral-small, qwq, llama-4-scout) a single part object. Text parts
join the turn's text; ``image_url`` parts are accepted only by models whose catalog entry
takes content-part images (`Vision.CONTENT_PARTS`), and only as ``data:`` URLs, as the model
pages say ("HTTP URL will not be accepted"). llama-3.2-11b-vision takes its image as the
``image`` input (a uint8 array or base64), which joins the last user turn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cfai.catalog import Form, ModelSpec, Vision

from ._core import (
    AiError,
    b64decode,
    bad_input,
    byte_array,
    check_str,
    opt_bool,
    opt_int,
    opt_num,
)

ROLES = ("system", "user", "assistant", "tool")
# gpt-oss takes OpenAI's roles, `developer` included (its model page's Messages schema).
OPENAI_ROLES = ("developer", *ROLES)


@dataclass(frozen=True)
class Turn:
    role: str
    content: str
    images: tuple[bytes, ...] = field(default=())


def invalid_input(where: str, why: str) -> AiError:
    """8001 "Invalid input": what Workers AI answers an input its schema refuses."""
    return AiError(400, 8001, f"Invalid input: {where}: {why}")


def _image_url(spec: ModelSpec, part: Mapping[str, Any], where: str) -> bytes:
    if spec.vision is not Vision.CONTENT_PARTS:
        raise invalid_input(where, f"{spec.name} does not take image input")
    ref = part.get("image_url")
    url = ref.get("url") if isinstance(ref, Mapping) else ref
    if not isinstance(url, str) or not url:
        raise bad_input(f"{where}.image_url.url", "required")
    if not url.startswith("data:"):
        raise invalid_input(
            f"{where}.image_url.url", "HTTP URL will not be accepted; send a data: URL"
        )
    return b64decode(url, f"{where}.image_url.url")


def _content(spec: ModelSpec, value: Any, where: str) -> tuple[str, tuple[bytes, ...]]:
    if isinstance(value, Mapping):  # one part object (mistral-small, qwq, llama-4-scout)
        value = [value]
    if not isinstance(value, list):
        return check_str(value, where, min_len=0), ()
    texts: list[str] = []
    images: list[bytes] = []
    for j, part in enumerate(value):
        at = f"{where}[{j}]"
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind in ("text", "input_text", "output_text"):
            texts.append(check_str(part.get("text", ""), f"{at}.text", min_len=0))
        elif kind in ("image_url", "input_image"):
            images.append(_image_url(spec, part, at))
        else:
            raise bad_input(f"{at}.type", "must be text or image_url")
    return "\n".join(texts), tuple(images)


def turns(spec: ModelSpec, inputs: Mapping[str, Any]) -> list[Turn]:
    """The conversation of `inputs` (prompt or messages), images attached to their turns."""
    has_prompt, has_messages = inputs.get("prompt") is not None, inputs.get("messages") is not None
    if has_prompt == has_messages:
        raise bad_input("prompt", "exactly one of prompt or messages is required")
    if has_prompt:
        out = [Turn("user", check_str(inputs["prompt"], "prompt"))]
    else:
        out = _messages(spec, inputs["messages"])
    image = inputs.get("image")
    if image is not None:
        data = b64decode(image, "image") if isinstance(image, str) else byte_array(image, "image")
        if spec.vision is Vision.IMAGE_FIELD:
            last = max((i for i, t in enumerate(out) if t.role == "user"), default=len(out) - 1)
            out[last] = Turn(out[last].role, out[last].content, (*out[last].images, data))
    return out


def _messages(spec: ModelSpec, messages: Any) -> list[Turn]:
    if not isinstance(messages, list) or not messages:
        raise bad_input("messages", "must be a non-empty array of {role, content}")
    roles = OPENAI_ROLES if spec.form in (Form.GPT_OSS, Form.CHAT_COMPLETION) else ROLES
    out = []
    for i, msg in enumerate(messages):
        if not isinstance(msg, Mapping):
            raise bad_input(f"messages[{i}]", "must be an object with role and content")
        role = msg.get("role")
        if role not in roles:
            raise bad_input(f"messages[{i}].role", f"must be one of {', '.join(roles)}")
        content = msg.get("content")
        text, images = (
            ("", ()) if content is None else _content(spec, content, f"messages[{i}].content")
        )
        out.append(Turn("system" if role == "developer" else str(role), text, images))
    return out


def check_params(spec: ModelSpec, inputs: Mapping[str, Any]) -> int:
    """Check the sampling parameters; answer `max_tokens` (the model's default when absent)."""
    limit = inputs.get("max_completion_tokens", inputs.get("max_tokens"))
    max_tokens = opt_int(
        {"max_tokens": limit}, "max_tokens", spec.default_max_tokens, 1, spec.context_window
    )
    opt_num(inputs, "temperature", 0.6, 0, 5)
    opt_num(inputs, "top_p", 1, 0, 2)
    opt_int(inputs, "top_k", 1, 1, 50)
    opt_int(inputs, "seed", 1, 1, 9_999_999_999)
    low = -2 if spec.form in (Form.GPT_OSS, Form.CHAT_COMPLETION) else 0
    opt_num(inputs, "repetition_penalty", 0, 0, 2)
    for key in ("frequency_penalty", "presence_penalty"):
        opt_num(inputs, key, 0, low, 2)
    for key in ("stream", "raw"):
        opt_bool(inputs, key)
    for key in ("tools", "functions"):
        if inputs.get(key) is not None and not isinstance(inputs[key], list):
            raise bad_input(key, "must be an array")
    if inputs.get("lora") is not None:
        check_str(inputs["lora"], "lora")
    return max_tokens


def tool_functions(inputs: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """(name, JSON Schema of the arguments) of each of `tools`, legacy ``{name, description,
    parameters}``, OpenAI ``{type, function: {...}}`` or Responses ``{type, name, ...}``."""
    out = []
    for i, tool in enumerate(inputs.get("tools") or []):
        fn = tool.get("function", tool) if isinstance(tool, Mapping) else None
        if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise bad_input(
                f"tools[{i}]", "must be {name, description, parameters} or {type, function}"
            )
        params = fn.get("parameters") or {"type": "object"}
        if not isinstance(params, Mapping):
            raise bad_input(f"tools[{i}].parameters", "must be a JSON Schema object")
        out.append((str(fn["name"]), params))
    return out


def prompt_tokens(conversation: Sequence[Turn]) -> int:
    return sum(len(t.content.split()) for t in conversation)
