"""Text generation models (vision models answer text too, so they live here).

Each entry cites the model page it was taken from (task, context window, capabilities,
input/output schema). Prices are Cloudflare's published 2025 unit prices
(https://developers.cloudflare.com/workers-ai/platform/pricing/); rate limits are the
per-model requests per minute of https://developers.cloudflare.com/workers-ai/platform/limits/
(text generation 300/min, vision 720/min).

Choices where public sources disagree (each noted at its entry):

- deepseek-r1-distill-qwen-32b and qwq-32b put their reasoning inline in ``response``, ended
  by ``</think>`` with no opening tag (cloudflare/workers-ai-provider issue #16);
- qwen3-30b-a3b-fp8 and granite-4.0-h-micro answer OpenAI ``chat.completion`` objects
  (their model pages' output schema), reasoning in ``message.reasoning_content``;
- gpt-oss answers the Responses API shape for ``input`` and does not stream over
  ``/ai/run`` (a JSON answer even with ``stream: true``, as cloudflare/ai's
  ``workers-ai-provider`` handles it);
- llama-4-scout's ``tool_calls`` items are ``{id, type, function: {name, arguments}}`` with
  ``arguments`` an object, as @cloudflare/workers-types types its output.
"""

from __future__ import annotations

from cfai.catalog._spec import Form, ModelSpec, Price, Reasoning, Task, ToolShape, Vision

__all__ = ["TEXT_MODELS"]

_PAGE = "https://developers.cloudflare.com/workers-ai/models/"
_TEXT_RATE = 300
_VISION_RATE = 720


def _text(
    name: str,
    price: tuple[float, float] | None,
    context: int | None,
    *,
    page: str | None = None,
    **extra: object,
) -> ModelSpec:
    prices = (Price("input_tokens", price[0]), Price("output_tokens", price[1])) if price else ()
    fields: dict[str, object] = {
        "name": name,
        "task": Task.TEXT_GENERATION,
        "streams": True,
        "context_window": context,
        "prices": prices,
        "rate_limit": _TEXT_RATE,
        "source": page or _PAGE + name.rsplit("/", 1)[1] + "/",
        **extra,
    }
    return ModelSpec(**fields)  # type: ignore[arg-type]


TEXT_MODELS: tuple[ModelSpec, ...] = (
    _text(
        "@cf/meta/llama-4-scout-17b-16e-instruct",
        (0.270, 0.850),
        131_000,
        tools=True,
        tool_shape=ToolShape.NESTED_OBJECT,
        vision=Vision.CONTENT_PARTS,
        json_mode=True,
        description="Meta Llama 4 Scout, 17B active / 16 experts, multimodal",
    ),
    _text(
        "@cf/openai/gpt-oss-120b",
        (0.350, 0.750),
        128_000,
        form=Form.GPT_OSS,
        streams=False,
        tools=True,
        tool_shape=ToolShape.OPENAI,
        json_mode=True,
        reasoning=Reasoning.REASONING_CONTENT,
        description="OpenAI's open-weight 120B model (Responses API)",
    ),
    _text(
        "@cf/openai/gpt-oss-20b",
        (0.200, 0.300),
        128_000,
        form=Form.GPT_OSS,
        streams=False,
        tools=True,
        tool_shape=ToolShape.OPENAI,
        json_mode=True,
        reasoning=Reasoning.REASONING_CONTENT,
        description="OpenAI's open-weight 20B model (Responses API)",
    ),
    # The model page publishes a context window of 80,000 tokens (the 2025 announcement
    # says 128K); cfai checks against the published window.
    _text(
        "@cf/google/gemma-3-12b-it",
        (0.345, 0.556),
        80_000,
        vision=Vision.CONTENT_PARTS,
        description="Google Gemma 3 12B, 140+ languages, image input",
    ),
    _text(
        "@cf/mistralai/mistral-small-3.1-24b-instruct",
        (0.351, 0.555),
        128_000,
        tools=True,
        vision=Vision.CONTENT_PARTS,
        description="Mistral Small 3.1 24B: vision and tool calling",
    ),
    _text(
        "@cf/qwen/qwq-32b",
        (0.660, 1.000),
        24_000,
        reasoning=Reasoning.THINK_TAG,
        description="Qwen QwQ 32B reasoning model",
    ),
    _text(
        "@cf/qwen/qwen2.5-coder-32b-instruct",
        (0.660, 1.000),
        32_768,
        json_mode=True,
        description="Qwen 2.5 Coder 32B, code generation",
    ),
    # Not in the 2025 price list; $0.051 / $0.34 per M is the model page's own price.
    _text(
        "@cf/qwen/qwen3-30b-a3b-fp8",
        (0.051, 0.340),
        32_768,
        form=Form.CHAT_COMPLETION,
        tools=True,
        tool_shape=ToolShape.OPENAI,
        json_mode=True,
        reasoning=Reasoning.REASONING_CONTENT,
        default_max_tokens=2000,
        description="Qwen3 30B-A3B mixture of experts, FP8",
    ),
    _text(
        "@cf/ibm-granite/granite-4.0-h-micro",
        (0.017, 0.112),
        131_000,
        form=Form.CHAT_COMPLETION,
        tools=True,
        tool_shape=ToolShape.OPENAI,
        json_mode=True,
        default_max_tokens=2000,
        description="IBM Granite 4.0 H Micro, small and efficient",
    ),
    _text(
        "@cf/meta/llama-3.3-70b-instruct-fp8-fast",
        (0.293, 2.253),
        24_000,
        tools=True,
        json_mode=True,
        description="Meta Llama 3.3 70B, FP8, speculative decoding",
    ),
    # No model page: the id is on the pricing page only, its context window unpublished.
    _text(
        "@cf/meta/llama-3.1-8b-instruct-fp8-fast",
        (0.045, 0.384),
        None,
        page="https://developers.cloudflare.com/workers-ai/platform/pricing/",
        description="Meta Llama 3.1 8B, FP8 fast variant",
    ),
    _text(
        "@cf/meta/llama-3.1-8b-instruct",
        (0.282, 0.827),
        7_968,
        json_mode=True,
        description="Meta Llama 3.1 8B instruct",
    ),
    _text(
        "@cf/meta/llama-3.2-1b-instruct",
        (0.027, 0.201),
        60_000,
        description="Meta Llama 3.2 1B: ultra-fast, simple tasks",
    ),
    _text(
        "@cf/deepseek-ai/deepseek-r1-distill-qwen-32b",
        (0.497, 4.881),
        80_000,
        json_mode=True,
        reasoning=Reasoning.THINK_TAG,
        description="DeepSeek R1 distilled into Qwen 32B (reasoning)",
    ),
    # Cloudflare lists it under Text Generation; its image comes as the `image` field.
    _text(
        "@cf/meta/llama-3.2-11b-vision-instruct",
        (0.049, 0.676),
        128_000,
        vision=Vision.IMAGE_FIELD,
        rate_limit=_VISION_RATE,
        description="Meta Llama 3.2 11B vision: image understanding",
    ),
    # Older catalog entries, kept for existing declarations.
    _text("@cf/meta/llama-3.1-8b-instruct-fast", (0.045, 0.384), 128_000),
    _text("@cf/meta/llama-3.2-3b-instruct", (0.051, 0.335), 128_000),
    _text("@cf/mistral/mistral-7b-instruct-v0.1", (0.110, 0.190), 2_824),
)
