"""The canary rollout, shared by every target: upload beside, prove, shift, promote or roll back.

For each Worker whose rendered hash differs from the deployed one (unchanged Workers are not
touched), in order:

1. upload the new version beside the current one, serving 0% of traffic;
2. run the contract suite against the new version only (Cloudflare's version override
   header), then shift traffic by `steps` (default 10% -> 100%), re-running it at each step;
3. on any failure, put the current version back at 100% and remove the new one.

A Worker promoted earlier in the same deploy is rolled back too when a later one fails, so
a failed deploy leaves the target exactly as it was. The previous versions are removed only
once every Worker passed.

Example::

    report = deploy(render_platform(platform, base_dir=p), stack="local",
                    workers_dir=p / "workers", driver=LocalDriver(p, "local"),
                    gate=contract_gate(p))
    raise SystemExit(report.exit_code)   # 0 promoted or nothing to do, 1 rolled back
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cfai.deploy.driver import Driver, Failure, Gate, Version
from cfai.errors import DeployUserError, StaleRenderError
from cfai.render import RenderedWorker, stale_paths

__all__ = ["DEFAULT_STEPS", "DeployReport", "Rollout", "deploy", "parse_steps"]

DEFAULT_STEPS = (10, 100)
Outcome = Literal["unchanged", "promoted", "rolled_back", "not_started"]


@dataclass
class Rollout:
    """What happened to one Worker: versions, the percentages it passed, what failed where."""

    worker: str
    old: Version | None
    new: Version | None = None
    outcome: Outcome = "not_started"
    passed: list[int] = field(default_factory=list)
    failed_at: int | None = None
    failures: list[Failure] = field(default_factory=list)
    note: str = ""


@dataclass
class DeployReport:
    rollouts: list[Rollout]

    @property
    def rolled_back(self) -> bool:
        return any(r.outcome == "rolled_back" for r in self.rollouts)

    @property
    def exit_code(self) -> int:
        """0 promoted (or nothing to do), 1 rolled back."""
        return 1 if self.rolled_back else 0

    @property
    def failures(self) -> list[tuple[str, int | None, Failure]]:
        return [(r.worker, r.failed_at, f) for r in self.rollouts for f in r.failures]


def parse_steps(text: str) -> tuple[int, ...]:
    """``"10,50,100"`` -> (10, 50, 100): increasing percentages in 1..100 ending at 100."""
    try:
        steps = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise DeployUserError(f"--steps {text!r}: give percentages like 10,50,100") from None
    if (
        not steps
        or steps[-1] != 100
        or any(not 0 < s <= 100 for s in steps)
        or any(a >= b for a, b in itertools.pairwise(steps))
    ):
        raise DeployUserError(
            f"--steps {text!r}: percentages must increase within 1..100 and end at 100"
        )
    return steps


def deploy(
    rendered: Sequence[RenderedWorker],
    *,
    stack: str,
    workers_dir: Path,
    driver: Driver,
    gate: Gate,
    steps: Sequence[int] = DEFAULT_STEPS,
    progress: Callable[[str], None] = lambda message: None,
) -> DeployReport:
    """Roll out every changed Worker of `rendered` (stack `stack`'s); see the module
    docstring. `StaleRenderError` first when `workers_dir` (``workers/<key>/``: the module
    and the stack's env) does not hold what is about to be deployed."""
    stale = stale_paths({stack: rendered}, workers_dir, every_stack=False)
    if stale:
        raise StaleRenderError(stale)
    parse_steps(",".join(str(s) for s in steps))
    plan = [(w, driver.current(w)) for w in rendered]
    rollouts = {w.key: Rollout(w.key, cur) for w, cur in plan}
    changed = [(w, cur) for w, cur in plan if cur is None or cur.differs_from(w)]
    for w, cur in plan:
        if (w, cur) not in changed:
            rollouts[w.key].outcome = "unchanged"
            progress(f"{w.key}: unchanged ({w.sha256[:12]})")
    done: list[tuple[RenderedWorker, Rollout]] = []
    for w, _ in changed:
        rollout = rollouts[w.key]
        try:
            ok = _roll(w, rollout, driver, gate, steps, progress)
        except BaseException:
            _undo(done, w.key, driver, progress)
            raise
        if not ok:
            _undo(done, w.key, driver, progress)
            break
        done.append((w, rollout))
    else:
        for w, rollout in done:
            if rollout.old is not None:
                driver.remove(w, rollout.old)
            rollout.outcome = "promoted"
            progress(f"{w.key}: promoted {_short(rollout.new)}")
    return DeployReport(list(rollouts.values()))


def _roll(
    w: RenderedWorker,
    rollout: Rollout,
    driver: Driver,
    gate: Gate,
    steps: Sequence[int],
    progress: Callable[[str], None],
) -> bool:
    """Canary `w` up to 100%; on failure restore the old version and return False."""
    old = rollout.old
    progress(f"{w.key}: uploading {w.sha256[:12]} beside {_short(old)}")
    new = rollout.new = driver.upload(w)
    # A Worker never deployed has nothing to protect: it is proven at 100% directly.
    stages = [0, *steps] if old is not None else [100]
    try:
        for pct in stages:
            weights = {new.id: 100} if old is None or pct == 100 else {old.id: 100 - pct}
            if old is not None and pct < 100:
                weights[new.id] = pct
            driver.split(w, weights)
            progress(f"{w.key}: {pct}% on {_short(new)}; running the contract")
            failures = gate(driver.outputs_for(w, new), f"{w.key} at {pct}%")
            if failures:
                rollout.failed_at, rollout.failures = pct, failures
                progress(f"{w.key}: {len(failures)} check(s) failed at {pct}%; rolling back")
                _restore(w, rollout, driver, progress)
                rollout.outcome = "rolled_back"
                return False
            rollout.passed.append(pct)
    except BaseException:
        _restore(w, rollout, driver, progress)
        rollout.outcome = "rolled_back"
        raise
    return True


def _undo(
    done: list[tuple[RenderedWorker, Rollout]],
    culprit: str,
    driver: Driver,
    progress: Callable[[str], None],
) -> None:
    for w, rollout in reversed(done):
        _restore(w, rollout, driver, progress)
        rollout.outcome = "rolled_back"
        rollout.note = f"rolled back because {culprit} failed"


def _restore(
    w: RenderedWorker, rollout: Rollout, driver: Driver, progress: Callable[[str], None]
) -> None:
    if rollout.old is not None:
        driver.split(w, {rollout.old.id: 100})
    if rollout.new is not None:
        driver.remove(w, rollout.new)
    progress(f"{w.key}: {_short(rollout.old)} serves 100%; {_short(rollout.new)} removed")


def _short(version: Version | None) -> str:
    return f"version {version.id[:8]} ({version.sha256[:12]})" if version else "no version"
