"""The data bucket's prefixes and keys have one home: flightpipe/bucket_layout.py."""

from __future__ import annotations

import ast
from pathlib import Path

from flightpipe import bucket_layout

REPO_ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("flightpipe", "handlers", "glue_scripts")


def spelled_staging_keys(path: Path) -> list[str]:
    """The string literals of ``path`` that spell a key under staging/."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value.startswith(bucket_layout.STAGING_PREFIX)
    ]


def test_no_module_but_bucket_layout_spells_a_staging_key() -> None:
    spelled = {
        str(path.relative_to(REPO_ROOT)): keys
        for folder in PRODUCT
        for path in sorted((REPO_ROOT / folder).rglob("*.py"))
        if path.name != "bucket_layout.py" and (keys := spelled_staging_keys(path))
    }
    assert spelled == {}


def test_every_key_a_load_stages_is_under_its_load_s_staging_prefix() -> None:
    prefix = bucket_layout.staging_prefix("load-1")
    assert prefix == "staging/load-1/"
    assert bucket_layout.load_staging_keys("load-1", 2) == [
        "staging/load-1/part-00000.csv.gz",
        "staging/load-1/part-00001.csv.gz",
        "staging/load-1/rejects/part-00000.csv",
        "staging/load-1/rejects/part-00001.csv",
        "staging/load-1/manifest.json",
    ]
    assert bucket_layout.rejects_key("load-1") == "rejected/load-1.csv"
    assert (
        bucket_layout.dimension_manifest_key("dimensions/airports.csv")
        == "staging/manifests/dimensions/airports.csv.manifest"
    )
