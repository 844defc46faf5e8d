"""What deploys is the product only: the Lambda zip and the Glue wheel, file by file.

The emulator (``flightpipe_local``), the synthetic data generator, the tests and
the benchmark are development tooling and must never reach Lambda or Glue.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from flightpipe_local.template import PackagedStack, package

pytestmark = pytest.mark.template

REPO_ROOT = Path(__file__).resolve().parents[1]
# What serverless-python-requirements adds from requirements.txt (aws-lambda-powertools and its
# dependencies) and its own marker files.
LAMBDA_DEPENDENCIES = {"aws_lambda_powertools", "jmespath", "typing_extensions.py", "bin"}
REQUIREMENTS_MARKERS = {"requirements.txt", ".completed_requirements"}


@pytest.fixture(scope="module")
def packaged() -> PackagedStack:
    return package(REPO_ROOT)


def sources(pattern: str, *exclude: str) -> set[str]:
    found = {str(p.relative_to(REPO_ROOT)) for p in REPO_ROOT.glob(pattern) if p.is_file()}
    return {
        name
        for name in found
        if "__pycache__" not in name and not any(name.startswith(prefix) for prefix in exclude)
    }


def test_the_lambda_zip_holds_the_handlers_the_library_without_etl_and_the_sql(
    packaged: PackagedStack,
) -> None:
    with zipfile.ZipFile(packaged.path.parent / "flightpipe.zip") as archive:
        names = set(archive.namelist())
    ours = {n for n in names if n.split("/")[0] not in LAMBDA_DEPENDENCIES | REQUIREMENTS_MARKERS}
    expected = (
        sources("handlers/*.py")
        | sources("flightpipe/**/*.py", "flightpipe/etl/", "flightpipe/ops/", "flightpipe/cli.py")
        | sources("sql/*.sql", "sql/ops_", "sql/report_")
    )
    assert ours == expected
    assert {n.split("/")[0] for n in names} - {"handlers", "flightpipe", "sql"} <= (
        LAMBDA_DEPENDENCIES | REQUIREMENTS_MARKERS
    )


def test_the_glue_wheel_holds_the_library_and_its_sql_only(packaged: PackagedStack) -> None:
    with zipfile.ZipFile(REPO_ROOT / packaged.glue_assets["wheel"]) as archive:
        names = {n for n in archive.namelist() if ".dist-info/" not in n}
    sql = {"flightpipe/_sql/" + Path(name).name for name in sources("sql/*.sql")}
    assert names == sources("flightpipe/**/*.py") | sql
    assert not any("flightpipe_local" in n or "synthetic" in n for n in names)
