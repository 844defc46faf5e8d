"""The interpreters AWS runs the pipeline's code on, provided on this machine.

The local stack runs each Lambda on the Python of its ``Runtime`` and the Glue
Python shell job on the Python of its ``PythonVersion``, each in a virtualenv
holding only what that AWS runtime provides (``make runtimes`` creates them
from ``requirements-lambda-runtime.txt`` and ``requirements-glue39.txt``).
The function's zip or the job's uploaded artifacts bring everything else, so a
module the artifact lacks fails here as it fails on AWS.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
GLUE_RUNTIMES = {
    ("pythonshell", "3.9"): Runtime("Glue Python shell 3.9 (analytics)", ".venv-runtime-glue-py39")
}


def lambda_runtime(name: str) -> Runtime:
    """The stand-in for a Lambda ``Runtime`` (e.g. ``python3.12``)."""
    try:
        return LAMBDA_RUNTIMES[name]
    except KeyError:
        supported = ", ".join(sorted(LAMBDA_RUNTIMES))
        message = f"Lambda runtime {name} is not emulated ({supported} are)"
        raise RuntimeMissingError(message) from None


def glue_runtime(command: dict[str, Any]) -> Runtime:
    """The stand-in for a Glue job ``Command`` (name and Python version)."""
    key = (command.get("Name") or "glueetl", str(command.get("PythonVersion") or "3"))
    try:
        return GLUE_RUNTIMES[key]
    except KeyError:
        message = f"Glue job command {key[0]} on Python {key[1]} is not emulated"
        raise RuntimeMissingError(message) from None
