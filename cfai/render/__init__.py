"""Render a platform's Workers: config -> ES module source, bindings and template hash.

A Worker's module is the same in every stack (stack values travel as vars), so the
rendered tree has one ``workers/<key>/`` per Worker: ``index.js`` and a ``wrangler.jsonc``
with an env per stack.

Example::

    from pathlib import Path
    from cfai.config import load_stack
    from cfai.render import Templates, module_path, render_platform, stale_paths, write_rendered

    stacks = {s: render_platform(load_stack(s), base_dir=Path(".")) for s in ("staging", "prod")}
    write_rendered(stacks, Path("workers"))      # workers/<key>/index.js + wrangler.jsonc
    assert not stale_paths(stacks, Path("workers"))
    module_path(Path("workers"), "assistant")    # where the reviewed module of a Worker is

    # The same with templates of your own (an edit being tried):
    render_platform(load_stack("local"), base_dir=Path("."), templates=Templates(Path("t")))

jinja2 errors become `cfai.errors.RenderError` here and nowhere else.
"""

from cfai.kinds.base import Binding
from cfai.render._output import (
    PLAYGROUND_DIR,
    WorkerFiles,
    module_path,
    stale_paths,
    worker_files,
    wrangler_config,
    write_rendered,
)
from cfai.render._render import (
    VAR_MAX_BYTES,
    RenderedWorker,
    module_sha256,
    render_platform,
    render_worker,
    setting_text,
    version_digest,
)
from cfai.render._templates import Templates, tojs

__all__ = [
    "PLAYGROUND_DIR",
    "VAR_MAX_BYTES",
    "Binding",
    "RenderedWorker",
    "Templates",
    "WorkerFiles",
    "module_path",
    "module_sha256",
    "render_platform",
    "render_worker",
    "setting_text",
    "stale_paths",
    "tojs",
    "version_digest",
    "worker_files",
    "wrangler_config",
    "write_rendered",
]
