"""What a text stand-in answers (`Generation`), before `_forms` writes it in a model's form."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: Any


@dataclass(frozen=True)
class Generation:
    """What the stand-in answers, before it is written in the model's form.

    `answer` and `reasoning` are the kept tokens (within `max_tokens`); `value` is the JSON
    mode answer (`json_mode`); `seed` keys the ids and padding derived from the inputs."""

    model: str
    answer: list[str]
    reasoning: list[str] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)
    value: Any = None
    json_mode: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    max_tokens: int = 256
    seed: str = ""

    @property
    def text(self) -> str:
        return " ".join(self.answer)

    @property
    def usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }

    @property
    def finish(self) -> str:
        if self.calls:
            return "tool_calls"
        return "length" if self.completion_tokens >= self.max_tokens else "stop"
