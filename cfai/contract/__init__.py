"""The contract suite: prove a deployed platform (local or live) behaves as declared.

A pytest plugin (`cfai.contract.plugin`) reads the outputs map and runs the checks in
`cfai/contract/checks` over every Worker by kind; `run_contract` runs it in-process and
`cfai test` prints the summary.

Example::

    from pathlib import Path
    from cfai.contract import run_contract

    run = run_contract(Path(".cfai/local/outputs.json"), project=Path("."), junit=Path("junit.xml"))
    print(run.ok, [(r.worker, r.check, r.message) for r in run.failed])
"""

from cfai.contract._outputs import (
    OutputsError,
    Target,
    WorkerTarget,
    load_outputs,
    parse_outputs,
    parse_target,
    read_outputs,
)
from cfai.contract.plugin import CHECKS_DIR
from cfai.contract.runner import (
    CheckResult,
    ContractRun,
    run_contract,
    stack_outputs,
)

__all__ = [
    "CHECKS_DIR",
    "CheckResult",
    "ContractRun",
    "OutputsError",
    "Target",
    "WorkerTarget",
    "load_outputs",
    "parse_outputs",
    "parse_target",
    "read_outputs",
    "run_contract",
    "stack_outputs",
]
