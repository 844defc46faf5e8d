"""Node.js 24 LTS runs every sls command, on a machine whose own Node may be 20.

`npm ci` installs the npm package `node` (pinned in package.json and package-lock.json), which
brings Node 24's binary into node_modules/.bin; npx puts that directory first on PATH, so the
`#!/usr/bin/env node` of node_modules/.bin/sls finds Node 24 whatever Node runs npx.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.template

REPO_ROOT = Path(__file__).resolve().parents[1]
# Prints the version of every Node process it is preloaded into (NODE_OPTIONS=--require).
PROBE = 'process.stderr.write("node-under-test=" + process.version + "\\n")\n'


def _run(command: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    environment.update(
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent/credentials",
        AWS_CONFIG_FILE="/nonexistent/config",
        SLS_TELEMETRY_DISABLED="1",
        SLS_NOTIFICATIONS_MODE="off",
        **env,
    )
    return subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_package_json_pins_node_24_as_a_dev_dependency_in_the_lock_file():
    package = json.loads((REPO_ROOT / "package.json").read_text(encoding="utf-8"))
    lock = json.loads((REPO_ROOT / "package-lock.json").read_text(encoding="utf-8"))
    pinned = package["devDependencies"]["node"]
    assert pinned.startswith("24.") and pinned.replace(".", "").isdigit()
    assert lock["packages"]["node_modules/node"]["version"] == pinned
    # npm runs the package's preinstall (it fetches the platform's binary) when allowed.
    assert package["allowScripts"] == {"node": True}


def test_the_makefile_runs_sls_on_node_24():
    result = _run(["make", "-s", "node-version"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("v24."), result.stdout


def test_sls_itself_runs_on_node_24_under_npx(tmp_path: Path):
    """The sls process (not npx's own Node) is Node 24: a probe preloaded into every Node
    process reports each one's version; `sls print` loads the config and every plugin."""
    probe = tmp_path / "probe.js"
    probe.write_text(PROBE, encoding="utf-8")
    result = _run(
        ["npx", "--no-install", "sls", "print", "--stage", "dev", "--region", "us-east-1"],
        NODE_OPTIONS=f"--require {probe}",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    versions = [
        line.split("=", 1)[1]
        for line in result.stderr.splitlines()
        if line.startswith("node-under-test=")
    ]
    # npx's own process first (whatever Node the machine has), then sls's.
    assert versions and versions[-1].startswith("v24."), versions
    assert "service: flightpipe" in result.stdout


def test_scripts_package_sh_refuses_to_package_on_anything_but_node_24():
    text = (REPO_ROOT / "scripts" / "package.sh").read_text(encoding="utf-8")
    package = text[text.index("package() {") :]
    assert package.index("node_24") < package.index("sls package")
    check = 'source <(sed -n "/^node_24()/,/^}/p" scripts/package.sh); node_24'
    result = _run(["bash", "-c", check])
    assert result.returncode == 0, result.stderr
