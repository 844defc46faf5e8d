"""The interpreters AWS runs the pipeline's code on, provided on this machine.

The local stack runs each Lambda on the Python of its ``Runtime``, the Glue
Python shell job on the Python of its ``PythonVersion`` and the Glue Spark job
on the Python and Spark of its ``GlueVersion``, each in a virtualenv holding
only what that AWS runtime provides (``make runtimes`` creates them from
``requirements-lambda-runtime.txt``, ``requirements-glue39.txt`` and
``requirements-glue5-spark.txt``).
The function's zip or the job's uploaded artifacts bring everything else, so a
module the artifact lacks fails here as it fails on AWS.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

SHIMS_DIR = Path(__file__).resolve().parent / "runtime_shims"


class RuntimeMissingError(RuntimeError):
    """The virtualenv of an AWS runtime the stack needs is not set up."""


@dataclass(frozen=True)
class Runtime:
    """One AWS runtime: its name as AWS spells it and the virtualenv that stands in for it."""

    name: str
    venv: str

    def python(self, repo: Path) -> Path:
        interpreter = repo / self.venv / "bin" / "python"
        if not interpreter.exists():
            raise RuntimeMissingError(
                f"{self.name}: {self.venv} is missing; run `make runtimes` in {repo}"
            )
        return interpreter


LAMBDA_RUNTIMES = {"python3.12": Runtime("Lambda python3.12", ".venv-runtime-lambda-py312")}
PYTHON_SHELL, SPARK = "pythonshell", "glueetl"
# Python shell runtimes are named by their PythonVersion, Spark ones by their GlueVersion
# (Glue 5.0: Spark 3.5.4, Python 3.11, Java 17:
# https://docs.aws.amazon.com/glue/latest/dg/release-notes.html).
GLUE_RUNTIMES = {
    (PYTHON_SHELL, "3.9"): Runtime("Glue Python shell 3.9 (analytics)", ".venv-runtime-glue-py39"),
    (SPARK, "5.0"): Runtime("Glue 5.0 Spark 3.5.4 (Python 3.11)", ".venv-runtime-glue5-spark"),
}


def lambda_runtime(name: str) -> Runtime:
    """The stand-in for a Lambda ``Runtime`` (e.g. ``python3.12``)."""
    try:
        return LAMBDA_RUNTIMES[name]
    except KeyError:
        supported = ", ".join(sorted(LAMBDA_RUNTIMES))
        message = f"Lambda runtime {name} is not emulated ({supported} are)"
        raise RuntimeMissingError(message) from None


def glue_runtime(command: dict[str, Any], glue_version: Optional[str] = None) -> Runtime:
    """The stand-in for a Glue job's ``Command`` (and ``GlueVersion``, for a Spark job)."""
    name = command.get("Name") or SPARK
    if name == SPARK:
        key, what = (name, str(glue_version or "")), f"Glue version {glue_version}"
    else:
        key = (name, str(command.get("PythonVersion") or "3"))
        what = f"Python {key[1]}"
    try:
        return GLUE_RUNTIMES[key]
    except KeyError:
        message = f"Glue job command {name} on {what} is not emulated"
        raise RuntimeMissingError(message) from None
