"""GitOps around a platform: drift between what runs and the repository, review stacks,
cost estimates. The CI workflows in ``.github/workflows`` drive these through `cfai`.

Example::

    from pathlib import Path
    from cfai.gitops import drift_local, estimate, new_stack, Traffic
    from cfai.config import load_stack

    print(drift_local(Path(".")).ok)
    new_stack("pr-42", "staging", project=Path("."))
    print(estimate(load_stack("staging"), Traffic(requests_per_day=1000)).total_usd_per_day)
"""

from cfai.gitops.cost import CostEstimate, Traffic, estimate
from cfai.gitops.drift import DriftReport, drift_local, drift_stack
from cfai.gitops.stacks import NewStack, new_stack

__all__ = [
    "CostEstimate",
    "DriftReport",
    "NewStack",
    "Traffic",
    "drift_local",
    "drift_stack",
    "estimate",
    "new_stack",
]
