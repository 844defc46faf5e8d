"""Step Functions patch: Wait states and Retry intervals run on a scaled clock.

The pipeline waits for crawlers and backs off between retries for seconds to
minutes, as it must on AWS. Locally the same definition runs with every Wait
state multiplied by ``scale`` (1/100), so a whole execution takes seconds while
the states, their order and the retry counts stay those of the deployed machine.

Retry intervals wait for *other work* to finish (a job at its MaxConcurrentRuns,
a throttled API), and that work runs here at this machine's speed, not 100 times
faster. Scaled like Waits, a retry budget sized for AWS (200 tries up to two
minutes apart) would run out in a few minutes of a local burst while the job runs
it waits for take as long as ever. So retries run on a clock only
``retry_scale`` (1/10) faster.
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
DEFAULT_RETRY_SCALE = 0.1


def install(
    patches: PatchSet, scale: float = DEFAULT_SCALE, retry_scale: float = DEFAULT_RETRY_SCALE
) -> None:
    """Scale Wait states by ``scale`` and Retry intervals by ``retry_scale``."""

    def _wait_interval(self: Any, env: Any, wait_seconds: float) -> None:
        if wait_seconds > 0:
            env.program_state_event.wait(wait_seconds * scale)

    def scaled_sleep(seconds: float) -> None:
        time.sleep(max(0.0, seconds) * retry_scale)

    patches.replace(WAIT_OWNER, WAIT_NAME, _wait_interval)
    clock = SimpleNamespace(
        **{name: getattr(time, name) for name in dir(time) if not name.startswith("_")}
    )
    clock.sleep = scaled_sleep
    patches.replace(RETRY_CLOCK_OWNER, RETRY_CLOCK_NAME, clock)
