"""Which tests start processes: found from their code, so a new test is marked without
anyone remembering to.

A test starts processes (workerd, the emulator, the router, node, the cfai CLI, a scripted
``pulumi``) when its function, a fixture it uses, or anything those reach in the test
modules or in cfai refers to a module that spawns (`subprocess`, `multiprocessing`, `pty`)
or to ``os.fork``/``os.posix_spawn``/``os.exec*``/``os.system``. The walk follows names
through each function's globals, into functions and classes (their methods) defined in
``tests/`` or ``cfai``; it stops at the standard library and third-party packages.

`spawns(item)` answers for a collected pytest item; tests/conftest.py marks those
``platform``. A test the walk misses is caught when it runs (`ProcessGuard`).
"""

from __future__ import annotations

import functools
import inspect
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["ProcessGuard", "spawns"]

_TESTS = Path(__file__).resolve().parent.parent
_CFAI = _TESTS.parent / "cfai"
_SPAWNING_MODULES = frozenset({"subprocess", "multiprocessing", "pty", "asyncio.subprocess"})
_SPAWNING_OS = frozenset(
    {"fork", "forkpty", "posix_spawn", "posix_spawnp", "system", "popen"}
    | {f"exec{s}" for s in ("l", "le", "lp", "lpe", "v", "ve", "vp", "vpe")}
    | {f"spawn{s}" for s in ("l", "le", "lp", "lpe", "v", "ve", "vp", "vpe")}
)


def _ours(obj: Any) -> bool:
    """Defined in the tests or in cfai (where the walk goes on)."""
    try:
        path = inspect.getsourcefile(obj)
    except TypeError:
        return False
    if path is None:
        return False
    resolved = Path(path).resolve()
    return resolved.is_relative_to(_TESTS) or resolved.is_relative_to(_CFAI)


def _codes(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _codes(const)


def _functions(obj: Any) -> Iterator[types.FunctionType]:
    """The plain functions behind `obj`: itself, a fixture's or a wrapper's, a class's methods."""
    obj = (getattr(obj, "__pytest_wrapped__", None) and obj.__pytest_wrapped__.obj) or obj
    obj = inspect.unwrap(obj) if callable(obj) else obj
    if isinstance(obj, types.MethodType):
        obj = obj.__func__
    if isinstance(obj, types.FunctionType):
        yield obj
    elif isinstance(obj, type) and _ours(obj):
        for value in vars(obj).values():
            if isinstance(value, staticmethod | classmethod):
                value = value.__func__
            elif isinstance(value, property):
                value = value.fget
            if isinstance(value, types.FunctionType):
                yield value


@functools.cache
def _function_spawns(fn: types.FunctionType) -> bool:
    # `_VISITING` cuts recursion cycles (a helper that reaches itself).
    _VISITING.add(fn)
    try:
        return any(_name_spawns(fn, code) for code in _codes(fn.__code__))
    finally:
        _VISITING.discard(fn)


_VISITING: set[types.FunctionType] = set()


def _name_spawns(fn: types.FunctionType, code: types.CodeType) -> bool:
    names = set(code.co_names)
    scope = fn.__globals__
    for name in names:
        if name in scope:
            value = scope[name]
        elif name in sys.modules:  # an import inside the function: `from cfai.local import X`
            value = sys.modules[name]
        else:
            continue
        if _object_spawns(value, names):
            return True
    # Free variables: closures over helpers defined in an enclosing function.
    for cell, name in zip(fn.__closure__ or (), fn.__code__.co_freevars, strict=False):
        try:
            value = cell.cell_contents
        except ValueError:
            continue
        if name in code.co_freevars and _object_spawns(value, names):
            return True
    return False


def _object_spawns(value: Any, attributes: set[str]) -> bool:
    if isinstance(value, types.ModuleType):
        if value.__name__ in _SPAWNING_MODULES:
            return True
        if value.__name__ == "os":
            return bool(attributes & _SPAWNING_OS)
        if _ours(value):
            # `module.attr` in the code: follow the attributes the code names (a package's
            # lazy `__all__` names included).
            public = set(vars(value)) | set(getattr(value, "__all__", ()))
            found = (getattr(value, a) for a in sorted(attributes & public))
            return any(
                _object_spawns(v, set()) for v in found if not isinstance(v, types.ModuleType)
            )
        return False
    if getattr(value, "__module__", None) in _SPAWNING_MODULES:
        return True  # e.g. `from subprocess import run`
    if getattr(value, "__name__", None) in _SPAWNING_OS and getattr(value, "__module__", None) in (
        "os",
        "posix",
    ):
        return True
    if callable(value) and not isinstance(value, type):
        value = inspect.unwrap(value)  # through functools.wraps (contextmanager, cache, ...)
    if not _ours(value):
        return False
    return any(f not in _VISITING and _function_spawns(f) for f in _functions(value))


def spawns(item: Any) -> bool:
    """True when pytest `item`'s test function or any fixture it uses starts processes."""
    targets: list[Any] = [getattr(item, "function", None)]
    info = getattr(item, "_fixtureinfo", None)
    for defs in info.name2fixturedefs.values() if info else ():
        targets += [d.func for d in defs]
    return any(t is not None and _object_spawns(t, set()) for t in targets)


class ProcessGuard:
    """Records processes started while armed (a ``sys.addaudithook`` hook: audit events
    ``subprocess.Popen``, ``os.posix_spawn``, ``os.fork``, ``os.exec``, ``os.system``), so
    a test the walk missed fails instead of slowing the fast lane unnoticed."""

    _EVENTS = frozenset({"subprocess.Popen", "os.posix_spawn", "os.fork", "os.exec", "os.system"})

    def __init__(self) -> None:
        self.armed = False
        self.started: list[str] = []
        sys.addaudithook(self._hook)  # cannot be removed; it only records while armed

    def _hook(self, event: str, args: tuple[Any, ...]) -> None:
        if self.armed and event in self._EVENTS:
            self.started.append(f"{event} {args[0]!r}" if args else event)
