"""Render a platform's Workers: config -> ES module source, bindings and template hash.

Example::

    from pathlib import Path
    from cfai.config import load_stack
    from cfai.render import Templates, render_platform, stale_paths, write_rendered

    workers = render_platform(load_stack("local"), base_dir=Path("."))
    write_rendered(workers, Path("workers"))      # workers/<script_name>/index.js + wrangler.jsonc
    assert not stale_paths(workers, Path("workers"))

    # The same with templates of your own (an edit being tried):
    render_platform(load_stack("local"), base_dir=Path("."), templates=Templates(Path("t")))

jinja2 errors become `cfai.errors.RenderError` here and nowhere else.
"""

from cfai.kinds.base import Binding
from cfai.render._output import PLAYGROUND_DIR, stale_paths, wrangler_config, write_rendered
from cfai.render._render import (
    RenderedWorker,
    module_sha256,
    render_platform,
    render_worker,
)
from cfai.render._templates import Templates, tojs

__all__ = [
    "PLAYGROUND_DIR",
    "Binding",
    "RenderedWorker",
    "Templates",
    "module_sha256",
    "render_platform",
    "render_worker",
    "stale_paths",
    "tojs",
    "wrangler_config",
    "write_rendered",
]
