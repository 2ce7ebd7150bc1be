"""Run the contract suite in-process and collect one result per check and Worker.

Example::

    from pathlib import Path
    from cfai.contract import run_contract

    run = run_contract(Path(".cfai/local/outputs.json"), project=Path("."))
    assert run.ok, run.failed
"""

from __future__ import annotations

import importlib.metadata
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cfai.contract.plugin import CHECKS_DIR, NOT_RUN_REASON
from cfai.provision import pulumi_cli

PLUGIN = "cfai.contract.plugin"
_PARAM = re.compile(r"\[(.*)\]$")
_RANK = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}


@dataclass
class CheckResult:
    """One check on one Worker: ``worker`` is the test id (``chat[assistant]``) or ``-``."""

    nodeid: str
    check: str
    worker: str
    outcome: str = "passed"  # passed | failed | error | skipped
    message: str = ""
    duration: float = 0.0


@dataclass
class ContractRun:
    """What a run found. `ok` only when checks ran and every one passed."""

    exit_code: int
    results: list[CheckResult] = field(default_factory=list)
    #: Checks with nothing to run on in this platform (outcome ``not run``, the reason as
    #: `message`); a ``-k`` expression's deselections are the user's choice and not listed.
    not_run: list[CheckResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and bool(self.results) and not self.failed

    @property
    def failed(self) -> list[CheckResult]:
        return [r for r in self.results if r.outcome != "passed"]

    def outcome(self, check: str, worker: str = "-") -> str | None:
        """The outcome of `check` (function name) on `worker`, None when it did not run."""
        found = [r for r in self.results if r.check.endswith(check) and r.worker == worker]
        return found[0].outcome if found else None


class _Collector:
    """A pytest plugin object recording every test's worst phase."""

    def __init__(self) -> None:
        self.results: dict[str, CheckResult] = {}
        self.not_run: dict[str, CheckResult] = {}

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        for item in items:
            reason = item.stash.get(NOT_RUN_REASON, None)
            if reason is not None:
                res = _new_result(item.nodeid)
                res.outcome, res.message = "not run", reason
                self.not_run[item.nodeid] = res

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or report.outcome != "passed":
            outcome: str = report.outcome
            if report.failed and report.when != "call":
                outcome = "error"
            res = self.results.get(report.nodeid) or _new_result(report.nodeid)
            if _RANK[outcome] >= _RANK[res.outcome]:
                res.outcome = outcome
                if outcome != "passed":
                    res.message = _short(report)
            res.duration += report.duration
            self.results[report.nodeid] = res

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            res = _new_result(report.nodeid or "collection")
            res.outcome, res.message = "error", _short(report)
            self.results[res.nodeid] = res


def _new_result(nodeid: str) -> CheckResult:
    path, _, name = nodeid.partition("::")
    m = _PARAM.search(name)
    worker = m.group(1) if m else "-"
    func = _PARAM.sub("", name) if name else ""
    stem = Path(path).stem.removeprefix("test_")
    where = stem if Path(path).parent.name == "checks" else Path(path).name
    return CheckResult(nodeid=nodeid, check=f"{where}::{func}" if func else where, worker=worker)


def _short(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = getattr(report, "longrepr", None)
    crash = getattr(longrepr, "reprcrash", None)
    text = str(crash.message) if crash is not None else str(longrepr or "")
    if isinstance(longrepr, tuple):  # a skip: (file, line, reason)
        text = str(longrepr[2])
    first = text.strip().splitlines()[0] if text.strip() else report.outcome
    return first[:300]


def _plugins() -> list[object]:
    """The plugin module, unless pytest loads it by its ``pytest11`` entry point.

    Passed as an object, not ``-p``: the caller has imported it already, and ``-p`` would
    make pytest warn that it cannot rewrite it (an error under ``filterwarnings = error``).
    """
    from cfai.contract import plugin

    if not os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        for ep in importlib.metadata.entry_points(group="pytest11"):
            if ep.value == PLUGIN:
                return []
    return [plugin]


def run_contract(
    outputs: Path,
    *,
    project: Path,
    junit: Path | None = None,
    keyword: str | None = None,
    wait: float | None = None,
    live: bool = False,
    rate_limit: bool = False,
    extra_args: list[str] | None = None,
    plugins: list[object] | None = None,
) -> ContractRun:
    """Run every check against the platform described by `outputs`."""
    args = [
        str(CHECKS_DIR),
        "--cfai-outputs",
        str(outputs),
        "--cfai-project",
        str(project.resolve()),
        "-p",
        "no:cacheprovider",
        "-q",
        "--tb=short",
        # cfai is imported before pytest starts (this function runs in it), so pytest cannot
        # rewrite asserts in it when the entry point marks the package; that is expected.
        "-W",
        "ignore::pytest.PytestAssertRewriteWarning",
    ]
    if junit is not None:
        junit.parent.mkdir(parents=True, exist_ok=True)
        args += ["--junitxml", str(junit)]
    if keyword:
        args += ["-k", keyword]
    if wait is not None:
        args += ["--cfai-wait", str(wait)]
    if live:
        args.append("--cfai-live")
    if rate_limit:
        args.append("--cfai-rate-limit")
    args += extra_args or []
    collector = _Collector()
    code = pytest.main(args, plugins=[collector, *_plugins(), *(plugins or [])])
    return ContractRun(
        int(code),
        sorted(collector.results.values(), key=lambda r: r.nodeid),
        sorted(collector.not_run.values(), key=lambda r: r.nodeid),
    )


def stack_outputs(stack: str, project: Path, *, timeout: float = 120.0) -> dict[str, Any]:
    """``pulumi stack output`` of `stack` as plain data (`cfai.provision.pulumi_cli`)."""
    return pulumi_cli.stack_outputs(stack, project, timeout=timeout).to_json()
