"""The packaged CloudFormation template of serverless.yml: what the local stack deploys.

``sls package`` (osls, offline, no credentials) turns serverless.yml, the state
machine file and the plugins' output into the CloudFormation template that
``sls deploy`` would send to AWS. The local stack deploys that very template, so
it runs what users deploy. Packaging takes a while, so a packaged template is
reused while it is newer than every file it is made from.

Stage parameters (``params:`` of serverless.yml) can be set as ``sls deploy
--param "name=value"`` sets them: :func:`package` passes each to ``sls package
--param``. A packaging with parameters goes to a directory of its own, named
by the parameter set (:func:`package_dir`), so packagings with different
parameters keep their own template and each is reused while it is fresh. It
runs from a service directory of its own too (:func:`service_mirror`): every
``sls package`` first deletes ``<service directory>/.serverless``, whatever
``--package`` says, and the repository's ``.serverless`` holds the packaging
without parameters.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping
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
# Where packagings with stage parameters go, one directory per parameter set.
PARAMS_PACKAGES_DIR = Path(".state") / "packages"
PARAMS_FILE = "params.json"


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
    # custom.glueAssets of serverless.yml: what the deploy uploads for the Glue jobs, and where.
    glue_assets: dict[str, Any] = field(default_factory=dict)
    # The stage parameters given to ``sls package --param`` (none: serverless.yml's own).
    params: dict[str, str] = field(default_factory=dict)


def parse_param(text: str) -> tuple[str, str]:
    """``name=value`` as ``sls deploy --param`` reads it (osls matches ``([^=]+)=(.+)`` and
    drops the value's trailing blanks: lib/configuration/variables/sources/
    instance-dependent/param.js): the name up to the first ``=``, the rest the value."""
    name, equals, value = text.partition("=")
    if not name or not equals or not value:
        raise ValueError(f"not a stage parameter: {text!r} (expected name=value)")
    return name, value.rstrip()


def package_dir(repo: Path, params: Mapping[str, str]) -> Path:
    """Where :func:`package` puts the template made with ``params``: ``.serverless`` with
    none (as ``sls package`` does), else a directory of its own for that parameter set."""
    if not params:
        return repo / ".serverless"
    canonical = json.dumps(dict(sorted(params.items())), separators=(",", ":"))
    return repo / PARAMS_PACKAGES_DIR / hashlib.sha256(canonical.encode()).hexdigest()[:16]


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
    params: Optional[Mapping[str, str]] = None,
) -> PackagedStack:
    """The packaged template of ``repo``'s serverless.yml, packaging it when stale.

    ``params`` are stage parameters, each passed as ``sls package --param "name=value"``;
    without ``out_dir`` the template goes to :func:`package_dir` of them.
    """
    if not (repo / "serverless.yml").is_file():
        raise PackagingError(f"no serverless.yml in {repo}")
    params = dict(sorted((params or {}).items()))
    out_dir = out_dir or package_dir(repo, params)
    template_path = out_dir / TEMPLATE_FILE
    if force or not is_fresh(template_path, repo) or _packaged_params(out_dir) != params:
        _run_sls_package(repo, out_dir, stage, region, params)
        _record_params(out_dir, params)
    template = json.loads(template_path.read_text(encoding="utf-8"))
    return PackagedStack(
        template,
        _stack_name(out_dir, stage),
        stage,
        region,
        template_path,
        _service_custom(out_dir).get("glueAssets") or {},
        params,
    )


def _record_params(out_dir: Path, params: Mapping[str, str]) -> None:
    """Note beside the template which stage parameters it was packaged with (none: no note,
    as a plain ``sls package`` leaves the directory)."""
    path = out_dir / PARAMS_FILE
    if params:
        path.write_text(json.dumps(dict(params), indent=2) + "\n", encoding="utf-8")
    else:
        path.unlink(missing_ok=True)


def _packaged_params(out_dir: Path) -> dict[str, str]:
    """The stage parameters the template in ``out_dir`` was packaged with (none recorded:
    none, as a plain ``sls package`` leaves it)."""
    try:
        return dict(json.loads((out_dir / PARAMS_FILE).read_text(encoding="utf-8")))
    except FileNotFoundError:
        return {}
    except (OSError, TypeError, ValueError):
        return {"": "unreadable"}


def sls_package_command(
    npx: str, out_dir: Path, stage: str, region: str, params: Mapping[str, str]
) -> list[str]:
    """The ``sls package`` command line, each stage parameter as ``--param name=value``."""
    command = [npx, "sls", "package", "--stage", stage, "--region", region]
    for name, value in params.items():
        command += ["--param", f"{name}={value}"]
    return [*command, "--package", str(out_dir)]


# Never linked into a service mirror: the packagings' own output and the repository's history.
_NOT_MIRRORED = (".serverless", ".state", ".git")


def service_mirror(repo: Path, out_dir: Path) -> Path:
    """A service directory for packaging into ``out_dir`` that leaves ``repo/.serverless`` be.

    osls deletes ``<service directory>/.serverless`` at the start of every packaging
    (``lib/plugins/aws/common/lib/cleanup-temp-dir.js``), even with ``--package``
    elsewhere. So a packaging into another directory runs from a mirror beside it: a copy
    of serverless.yml (osls wants a real file there) and a link to every other top-level
    entry of the repository, so it reads the same sources, plugins and node_modules and
    builds the wheel into the same ``dist/``.
    """
    mirror = out_dir.with_name(out_dir.name + "-service")
    shutil.rmtree(mirror, ignore_errors=True)
    mirror.mkdir(parents=True)
    (repo / "dist").mkdir(exist_ok=True)
    for entry in repo.iterdir():
        if entry.name in _NOT_MIRRORED:
            continue
        if entry.name == "serverless.yml":
            shutil.copy2(entry, mirror / entry.name)
        else:
            (mirror / entry.name).symlink_to(entry)
    return mirror


def _run_sls_package(
    repo: Path, out_dir: Path, stage: str, region: str, params: Mapping[str, str]
) -> None:
    npx = shutil.which("npx")
    if npx is None:
        raise PackagingError(
            "npx not found: install Node.js with npm and run `npm ci` (it brings Node 24)"
        )
    if not (repo / "node_modules" / ".bin" / "sls").exists():
        raise PackagingError("node_modules/.bin/sls missing: run `npm ci` first")
    out_dir = out_dir.resolve()
    in_place = out_dir == (repo / ".serverless").resolve()
    service_dir = repo if in_place else service_mirror(repo.resolve(), out_dir)
    command = sls_package_command(npx, out_dir, stage, region, params)
    env = dict(os.environ)
    for key in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        env.pop(key, None)
    env["SLS_TELEMETRY_DISABLED"] = "1"
    completed = subprocess.run(
        command, cwd=service_dir, env=env, capture_output=True, text=True, check=False
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
