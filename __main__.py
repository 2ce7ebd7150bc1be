"""The Pulumi program: `pulumi up --stack <stack>` deploys the stack's platform.

The declaration is Pulumi's config ``cfai:platform`` (the stack file, an ESC environment,
`pulumi config set --path`, the Automation API: whatever set it), read through
``pulumi.Config("cfai")``; Pulumi runs this from the project directory, which anchors custom
Workers' modules. An unset or invalid declaration stops the run with cfai's message (every
problem, by path), not a Python stack trace.
"""

from pathlib import Path

import pulumi

from cfai.errors import CfaiError
from cfai.provision.platform import Platform, PlatformArgs

try:
    args = PlatformArgs.from_pulumi(Path.cwd())
except CfaiError as err:
    raise pulumi.RunError(str(err)) from None

platform = Platform(pulumi.get_project(), args)
for key, value in platform.outputs.items():
    pulumi.export(key, value)
