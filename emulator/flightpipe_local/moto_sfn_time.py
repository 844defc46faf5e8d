"""Step Functions patch: Wait states and Retry intervals run on a scaled clock.

The pipeline waits for crawlers and backs off between retries for seconds to
minutes, as it must on AWS. Locally the same definition runs with every wait
multiplied by ``scale`` (e.g. 1/100), so a whole execution takes seconds while the
states, their order and the retry counts stay those of the deployed machine.
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function

from flightpipe_local._patching import PatchSet

WAIT_OWNER = wait_function.WaitFunction
WAIT_NAME = "_wait_interval"
RETRY_CLOCK_OWNER = retrier_decl
RETRY_CLOCK_NAME = "time"

DEFAULT_SCALE = 0.01


def install(patches: PatchSet, scale: float = DEFAULT_SCALE) -> None:
    """Scale Wait states and Retry intervals by ``scale``."""

    def _wait_interval(self: Any, env: Any, wait_seconds: float) -> None:
        if wait_seconds > 0:
            env.program_state_event.wait(wait_seconds * scale)

    def scaled_sleep(seconds: float) -> None:
        time.sleep(max(0.0, seconds) * scale)

    patches.replace(WAIT_OWNER, WAIT_NAME, _wait_interval)
    clock = SimpleNamespace(
        **{name: getattr(time, name) for name in dir(time) if not name.startswith("_")}
    )
    clock.sleep = scaled_sleep
    patches.replace(RETRY_CLOCK_OWNER, RETRY_CLOCK_NAME, clock)
