"""Run a writer script and SIGKILL it after it acknowledged some writes: the durability
tests' "acknowledged = durable" setup, in one place."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

__all__ = ["kill_after_acks"]


def kill_after_acks(script: str, path: Path, acks: int) -> list[int]:
    """Start ``python -c script path``, read the batch numbers it prints (one a line, each
    printed after its write returned) and SIGKILL it once `acks` arrived — most likely in
    the middle of the next batch. Returns the numbers read."""
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    acked: list[int] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            acked.append(int(line))
            if len(acked) == acks:
                os.kill(proc.pid, signal.SIGKILL)
                break
    finally:
        proc.kill()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
    return acked
