"""The packaged CloudFormation template of serverless.yml: what the local stack deploys.

``sls package`` (osls, offline, no credentials) turns serverless.yml, the state
machine file and the plugins' output into the CloudFormation template that
``sls deploy`` would send to AWS. The local stack deploys that very template, so
it runs what users deploy. Packaging takes a while, so a packaged template is
reused while it is newer than every file it is made from.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

TEMPLATE_FILE = "cloudformation-template-update-stack.json"
STATE_FILE = "serverless-state.json"
# Everything the template, the Lambda zip and the Glue wheel are built from.
SOURCES = (
    "serverless.yml",
    "statemachine",
    "handlers",
    "glue_scripts",
    "flightpipe",
    "sql",
    "pyproject.toml",
    "requirements.txt",
    "package.json",
    "package-lock.json",
    ".serverless_plugins",
)
DEFAULT_STAGE = "dev"
DEFAULT_REGION = "us-east-1"


class PackagingError(RuntimeError):
    """``sls package`` could not produce the template."""


@dataclass(frozen=True)
class PackagedStack:
    """A packaged template and the names serverless gave the stack."""

    template: dict[str, Any]
    stack_name: str
    stage: str
    region: str
    path: Path
    # custom.glueAssets of serverless.yml: what the deploy uploads for the Glue job, and where.
    glue_assets: dict[str, Any] = field(default_factory=dict)


def newest_mtime(paths: Iterable[Path]) -> float:
    """The latest modification time of the files under ``paths``."""
    newest = 0.0
    for path in paths:
        if path.is_dir():
            for child in path.rglob("*"):
                if child.is_file() and "__pycache__" not in child.parts:
                    newest = max(newest, child.stat().st_mtime)
        elif path.is_file():
            newest = max(newest, path.stat().st_mtime)
    return newest


def is_fresh(template: Path, repo: Path) -> bool:
    """Whether ``template`` is newer than every source it is made from."""
    if not template.is_file():
        return False
    return template.stat().st_mtime >= newest_mtime(repo / name for name in SOURCES)


def package(
    repo: Path,
    out_dir: Optional[Path] = None,
    stage: str = DEFAULT_STAGE,
    region: str = DEFAULT_REGION,
    force: bool = False,
) -> PackagedStack:
    """The packaged template of ``repo``'s serverless.yml, packaging it when stale."""
    if not (repo / "serverless.yml").is_file():
        raise PackagingError(f"no serverless.yml in {repo}")
    out_dir = out_dir or repo / ".serverless"
    template_path = out_dir / TEMPLATE_FILE
    if force or not is_fresh(template_path, repo):
        _run_sls_package(repo, out_dir, stage, region)
    template = json.loads(template_path.read_text(encoding="utf-8"))
    return PackagedStack(
        template,
        _stack_name(out_dir, stage),
        stage,
        region,
        template_path,
        _service_custom(out_dir).get("glueAssets") or {},
    )


def _run_sls_package(repo: Path, out_dir: Path, stage: str, region: str) -> None:
    npx = shutil.which("npx")
    if npx is None:
        raise PackagingError("npx not found: install Node.js 20 and run `npm ci`")
    if not (repo / "node_modules" / ".bin" / "sls").exists():
        raise PackagingError("node_modules/.bin/sls missing: run `npm ci` first")
    command = [
        npx,
        "sls",
        "package",
        "--stage",
        stage,
        "--region",
        region,
        "--package",
        str(out_dir),
    ]
    env = dict(os.environ)
    for key in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        env.pop(key, None)
    env["SLS_TELEMETRY_DISABLED"] = "1"
    completed = subprocess.run(
        command, cwd=repo, env=env, capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        output = (completed.stdout + completed.stderr).strip()
        raise PackagingError(f"`{' '.join(command[1:])}` failed:\n{output[-4000:]}")
    if not (out_dir / TEMPLATE_FILE).is_file():
        raise PackagingError(f"sls package wrote no {TEMPLATE_FILE} in {out_dir}")


def _service_custom(out_dir: Path) -> dict[str, Any]:
    """The ``custom`` section of serverless.yml, as the framework resolved it."""
    try:
        state = json.loads((out_dir / STATE_FILE).read_text(encoding="utf-8"))
        return dict(state["service"].get("custom") or {})
    except (OSError, KeyError, TypeError, ValueError):
        return {}


def _stack_name(out_dir: Path, stage: str) -> str:
    state_path = out_dir / STATE_FILE
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
        service = state["service"]["service"]
        service_name = service if isinstance(service, str) else service["name"]
        return f"{service_name}-{stage}"
    except (OSError, KeyError, TypeError, ValueError):
        return f"flightpipe-{stage}"
