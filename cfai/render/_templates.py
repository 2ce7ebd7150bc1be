"""Where templates come from: a `Templates` directory and its strict Jinja environment.

Every config value reaches JavaScript through the `tojs` filter; `{{ }}` with anything
else is refused (see `_finalize`). jinja2 errors become `RenderError` here.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jinja2

import cfai
from cfai.errors import RenderError

__all__ = ["JsLiteral", "Templates", "tojs"]


class JsLiteral(str):
    """Text produced by `tojs`: the only kind of value a template may print."""


def tojs(value: Any) -> JsLiteral:
    """A JSON literal safe anywhere in a JS module (and inside an HTML script element).

    >>> print(tojs("</script>\\u2028"))
    "\\u003c/script>\\u2028"
    """
    try:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise RenderError(f"value cannot be written as JavaScript: {err}") from None
    # U+2028/2029 are line terminators in JS source (pre-ES2019) and in comments; `<` covers
    # `</script>` and `<!--`.
    return JsLiteral(
        text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    )


def _finalize(value: Any) -> Any:
    if isinstance(value, JsLiteral):
        return value
    raise RenderError(
        f"template printed a raw value {value!r}; every value must pass through `| tojs`"
    )


class Templates:
    """A directory of Worker templates (``workers/<kind>.js.j2`` and ``workers/_partials``).

    The renderer takes one (default: `Templates.packaged()`, cfai's own); a test or a
    template author passes another directory to try an edit without touching cfai.

    Example::

        templates = Templates(Path("my-templates"))
        render_platform(platform, base_dir=Path("."), templates=templates)
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(self.root),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            finalize=_finalize,
        )
        self._env.filters["tojs"] = tojs

    @classmethod
    def packaged(cls) -> Templates:
        """cfai's own templates (built on first use and then reused)."""
        return _packaged()

    def __repr__(self) -> str:
        return f"Templates({str(self.root)!r})"

    def files(self) -> list[Path]:
        """Every file under the directory (what a watcher of template edits watches)."""
        return sorted(p for p in self.root.rglob("*") if p.is_file())

    def render(self, name: str, context: dict[str, Any]) -> str:
        """Template `name` rendered with `context`; `RenderError` says which and where."""
        try:
            return self._env.get_template(name).render(context)
        except RenderError:
            raise
        except jinja2.TemplateError as err:
            where = (
                f" ({_shown(err.filename)}:{err.lineno})"
                if isinstance(err, jinja2.TemplateSyntaxError)
                else ""
            )
            raise RenderError(f"template {name} failed to render{where}: {err}") from None


def _shown(filename: str | None) -> str:
    """The template file as its author knows it: relative to the working directory when
    under it (``templates/workers/chat.js.j2``), else absolute."""
    if filename is None:
        return "?"
    path = Path(filename)
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _packaged_dir() -> Path:
    # Installed: the package carries the templates as `_templates`; in a checkout that is a
    # symlink to the repository's `templates/`, resolved so that errors name the file the
    # author edits (`templates/...`), not the package's link to it.
    packaged = Path(cfai.__file__).parent / "_templates"
    if packaged.is_dir():
        return packaged.resolve()
    return Path(cfai.__file__).resolve().parent.parent / "templates"


@functools.cache
def _packaged() -> Templates:
    return Templates(_packaged_dir())
