"""The Pulumi program: `pulumi up --stack <stack>` deploys `Pulumi.<stack>.yaml`'s platform.

Pulumi runs this from the project directory. An invalid declaration or stack config stops
the run with cfai's message (every problem, by path), not a Python stack trace.
"""

from pathlib import Path

import pulumi

from cfai.errors import CfaiError
from cfai.provision.platform import Platform, PlatformArgs

try:
    args = PlatformArgs.from_stack(pulumi.get_stack(), Path.cwd())
except CfaiError as err:
    raise pulumi.RunError(str(err)) from None

platform = Platform(pulumi.get_project(), args)
for key, value in platform.outputs.items():
    pulumi.export(key, value)
