"""Rendered Workers on disk: one ``<out_dir>/<key>/`` per Worker, shared by every stack.

``index.js`` is the Worker's module, the same in every stack (stack values travel as vars);
``wrangler.jsonc`` has one wrangler ``env`` per stack with that stack's script name, account,
compatibility settings, vars and bindings, so ``wrangler deploy --env staging`` deploys the
staging Worker. Wrangler does not inherit vars or bindings into an env
(https://developers.cloudflare.com/workers/wrangler/environments/), so each env is complete,
and the top level holds no ``compatibility_date``: ``wrangler deploy`` without ``--env``
stops instead of deploying a Worker without its vars.

Files are byte-stable (UTF-8, ``\\n`` newlines, sorted keys) so a PR diff of ``workers/``
is exactly what changed: a template edit once in ``index.js``, a stack's setting once in
its env.

Example::

    stacks = {"staging": render_platform(staging, base_dir=p), "prod": render_platform(prod, base_dir=p)}
    write_rendered(stacks, p / "workers")                 # workers/<key>/index.js + wrangler.jsonc
    assert not stale_paths(stacks, p / "workers")
    module_path(p / "workers", "assistant")               # workers/assistant/index.js
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cfai.errors import ConfigError, Problem
from cfai.render._render import RenderedWorker

__all__ = [
    "WorkerFiles",
    "module_path",
    "stale_paths",
    "worker_files",
    "wrangler_config",
    "write_rendered",
]

MAIN_MODULE = "index.js"
WRANGLER_FILE = "wrangler.jsonc"
_SECRET_LINE = re.compile(r"^// env\.(?P<stack>\S+) secret (?P<name>[A-Za-z_][A-Za-z0-9_]*):")

Stacks = Mapping[str, Sequence[RenderedWorker]]


def module_path(workers_dir: Path, key: str) -> Path:
    """Where Worker `key`'s committed module is: ``<workers_dir>/<key>/index.js``. Every
    reader of the reviewed code (the contract suite's hash check, drift, deploy) asks here.

    >>> module_path(Path("workers"), "kb").as_posix()
    'workers/kb/index.js'
    """
    return workers_dir / key / MAIN_MODULE


@dataclass(frozen=True)
class WorkerFiles:
    """One ``<key>/`` directory: the module every stack runs and each stack's render."""

    key: str
    source: str
    sha256: str
    stacks: Mapping[str, RenderedWorker]


def worker_files(stacks: Stacks) -> list[WorkerFiles]:
    """Group renders by Worker key, sorted. `ConfigError` (the user's to fix) when two
    stacks render different code for one key, naming the key, the stacks and the setting
    that differs."""
    by_key: dict[str, dict[str, RenderedWorker]] = {}
    for stack in sorted(stacks):
        for worker in stacks[stack]:
            by_key.setdefault(worker.key, {})[stack] = worker
    problems = []
    found = []
    for key in sorted(by_key):
        renders = by_key[key]
        first_stack, first = next(iter(renders.items()))
        for stack, other in renders.items():
            if other.source != first.source:
                problems.append(_conflict(key, (first_stack, first), (stack, other)))
                break
        found.append(WorkerFiles(key, first.source, first.sha256, renders))
    if problems:
        raise ConfigError(problems, source="the stacks rendered together")
    return found


def _conflict(key: str, a: tuple[str, RenderedWorker], b: tuple[str, RenderedWorker]) -> Problem:
    (sa, wa), (sb, wb) = a, b
    code_a, code_b = dict(wa.code), dict(wb.code)
    differ = [
        f"{name} {_short(code_a.get(name))} in {sa}, {_short(code_b.get(name))} in {sb}"
        for name in sorted(code_a.keys() | code_b.keys())
        if code_a.get(name) != code_b.get(name)
    ]
    why = "; ".join(differ) or "the module files differ"
    return Problem(
        f"workers.{key}",
        f"stacks {sa} and {sb} render different code for Worker {key!r} ({why}), but "
        f"workers/{key}/ holds one module for every stack. Make that setting the same in "
        "every stack (settings longer than a var's 5 KB are built into the code), or give "
        "the Worker another key in one of them.",
    )


def _short(text: str | None) -> str:
    if text is None:
        return "unset"
    return repr(text) if len(text) <= 40 else f"{text[:30]!r}... ({len(text.encode())} bytes)"


def _env(worker: RenderedWorker) -> tuple[dict[str, Any], list[str]]:
    """A stack's wrangler env and the names of its secrets."""
    # Keys in reading order: which Worker, where, how it runs, then its bindings.
    env: dict[str, Any] = {"name": worker.script_name}
    if worker.account_id:
        env["account_id"] = worker.account_id
    env |= {
        "compatibility_date": worker.compatibility_date,
        "compatibility_flags": list(worker.compatibility_flags),
        "workers_dev": True,
    }
    secrets, variables, vectorize = [], {}, []
    for b in worker.bindings:
        if b.type == "ai":
            env["ai"] = {"binding": b.name}
        elif b.type == "vectorize":
            vectorize.append({"binding": b.name, "index_name": b.index_name})
        elif b.type == "plain_text":
            variables[b.name] = b.text or ""
        else:
            secrets.append(b.name)
    if vectorize:
        env["vectorize"] = vectorize
    if variables:
        env["vars"] = dict(sorted(variables.items()))
    return env, secrets


def _wrangler(key: str, sha256: str, envs: Mapping[str, tuple[dict[str, Any], list[str]]]) -> str:
    header = [
        f"// Generated by `cfai render` for Worker {json.dumps(key)}; do not edit by hand.",
        f"// template_sha256: {sha256}",
        "// One env per stack: `wrangler deploy --env <stack>` (vars and bindings are per env).",
    ]
    header += [
        f"// env.{stack} secret {name}: not a var; set it with "
        f"`wrangler secret put {name} --env {stack}`."
        for stack, (_, secrets) in sorted(envs.items())
        for name in secrets
    ]
    config = {
        "name": key,
        "main": MAIN_MODULE,
        # Upload index.js as it is (no esbuild pass), so what runs is the reviewed file.
        "no_bundle": True,
        "env": {stack: envs[stack][0] for stack in sorted(envs)},
    }
    body = json.dumps(config, indent=2, ensure_ascii=False)
    # Line-based tools (and editors) treat U+2028/2029 as line breaks.
    body = body.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return "\n".join([*header, body]) + "\n"


def wrangler_config(files: WorkerFiles) -> str:
    """The ``wrangler.jsonc`` (JSONC text) of one Worker: an env per stack that deploys the
    same code with that stack's names, vars and bindings.

    Example::

        (files,) = worker_files({"staging": [kb_staging], "prod": [kb_prod]})
        Path("workers/kb/wrangler.jsonc").write_text(wrangler_config(files))
    """
    envs = {stack: _env(worker) for stack, worker in files.stacks.items()}
    return _wrangler(files.key, files.sha256, envs)


def _committed_envs(path: Path) -> dict[str, tuple[dict[str, Any], list[str]]] | None:
    """The envs (and their secrets) of a ``wrangler.jsonc`` cfai wrote; None when there is
    none or it is not one cfai could have written."""
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    lines = text.splitlines()
    secrets: dict[str, list[str]] = {}
    for line in lines:
        found = _SECRET_LINE.match(line)
        if found:
            secrets.setdefault(found["stack"], []).append(found["name"])
    try:
        data = json.loads("\n".join(line for line in lines if not line.startswith("//")))
    except ValueError:
        return None
    envs = data.get("env") if isinstance(data, dict) else None
    if not isinstance(envs, dict) or not all(isinstance(e, dict) for e in envs.values()):
        return None
    return {stack: (env, secrets.get(stack, [])) for stack, env in envs.items()}


def _files(files: WorkerFiles, out_dir: Path, every_stack: bool) -> dict[Path, str]:
    """The text each file of `files` should hold; with `every_stack` False the envs of
    other stacks already in its ``wrangler.jsonc`` are kept."""
    directory = out_dir / files.key
    envs = {stack: _env(worker) for stack, worker in files.stacks.items()}
    if not every_stack:
        kept = _committed_envs(directory / WRANGLER_FILE) or {}
        others = sorted(set(kept) - set(envs))
        module = module_path(out_dir, files.key)
        committed = module.read_text(encoding="utf-8") if module.is_file() else None
        if others and committed is not None and committed != files.source:
            problem = (
                f"{module} also serves stack(s) {', '.join(others)}, and stack(s) "
                f"{', '.join(sorted(envs))} render different code for it: render every "
                "stack together with `cfai render`"
            )
            raise ConfigError([Problem(f"workers.{files.key}", problem)])
        envs = {**{s: kept[s] for s in others}, **envs}
    return {
        module_path(out_dir, files.key): files.source,
        directory / WRANGLER_FILE: _wrangler(files.key, files.sha256, envs),
    }


def write_rendered(stacks: Stacks, out_dir: Path, *, every_stack: bool = True) -> list[Path]:
    """Write ``out_dir/<key>/{index.js,wrangler.jsonc}`` for the Workers of `stacks`
    (stack name -> its renders); return the paths changed.

    `every_stack`: `stacks` are all the stacks the files serve (their ``wrangler.jsonc`` gets
    exactly these envs); False: the given stacks' envs replace theirs and other stacks' envs
    already there stay (``cfai render --stack S``)."""
    changed = []
    for files in worker_files(stacks):
        for path, text in _files(files, out_dir, every_stack).items():
            data = text.encode("utf-8")
            if path.is_file() and path.read_bytes() == data:
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            changed.append(path)
    return changed


def stale_paths(stacks: Stacks, out_dir: Path, *, every_stack: bool = True) -> list[str]:
    """Paths of the files of `stacks`' Workers that are missing or differ from a fresh
    render. `every_stack` False: a ``wrangler.jsonc`` is fresh when it holds the given
    stacks' envs as rendered, whatever other stacks it also holds."""
    stale = []
    for files in worker_files(stacks):
        module = module_path(out_dir, files.key)
        if not module.is_file() or module.read_bytes() != files.source.encode("utf-8"):
            stale.append(str(module))
        config = out_dir / files.key / WRANGLER_FILE
        if every_stack:
            fresh = config.is_file() and config.read_bytes() == wrangler_config(files).encode()
        else:
            committed = _committed_envs(config) or {}
            fresh = all(
                committed.get(stack) == _env(worker) for stack, worker in files.stacks.items()
            )
        if not fresh:
            stale.append(str(config))
    return stale
