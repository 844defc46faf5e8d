"""The summary's peak_rss_mb is the job process's own peak, not its launcher's."""

from __future__ import annotations

import subprocess
import sys

import pytest

# A launcher that touches 400 MiB, frees it, then starts the job's interpreter (subprocess
# without preexec_fn: vfork on Python 3.10+, as the Glue runtime's launcher may do), which
# reports peak_rss_mb. ru_maxrss would be >= 400 there: Linux keeps it across execve.
LAUNCHER = """
import mmap, subprocess, sys
ballast = mmap.mmap(-1, 400 << 20)
for i in range(0, len(ballast), 4096):
    ballast[i] = 1
ballast.close()
child = "from flightpipe.etl.summary import peak_rss_mb; print(peak_rss_mb())"
done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True)
print(done.stdout)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="VmHWM is Linux's")
def test_peak_rss_is_the_process_s_own_not_its_launcher_s() -> None:
    done = subprocess.run([sys.executable, "-c", LAUNCHER], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert 1 < float(done.stdout.strip()) < 200
