"""README.md: it opens with the demo and the test command, its state machine diagram is the one
scripts/asl_diagram.py draws from statemachine/pipeline.asl.yml, every command it shows is one
a test runs, and its Troubleshooting covers the errors a user meets.

What "every command is one a test runs" checks, exactly:
- The commands of README's fenced ``bash`` blocks: ``make demo`` is run by
  tests/test_e2e_readme.py; ``make test`` is what ``.ci/run`` runs (it runs this suite, so no
  test can run it); every other one is run, literally and in README's order, by
  tests/test_e2e_readme.py against ``flightpipe local up`` (see its docstring for how).
- Inline code spans of the prose that start like a command (``make``, ``flightpipe``, ``aws``,
  ``npx`` ...) must be the leading words of one of those commands, or listed below with the test
  that runs them.
Commands in docs/ are not checked.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest
from readme_commands import (
    REPO_ROOT,
    bash_commands,
    inline_commands,
    is_prefix_of_any,
    readme_text,
)

# The fenced commands not run by tests/test_e2e_readme.py's local-stack test.
DEMO, TEST = "make demo", "make test"
RUN_ELSEWHERE = {
    DEMO: ("tests/test_e2e_readme.py", "test_make_demo_runs_the_pipeline_on_the_shared_data"),
    TEST: (".ci/run", "make test"),
}
# Inline commands that are no leading words of a fenced command, and the test that runs each.
INLINE_RUN_BY = {
    "make node-version": ("tests/test_node_version.py", "test_the_makefile_runs_sls_on_node_24"),
    "scripts/asl_diagram.py --write": (
        "tests/test_readme.py",
        "test_asl_diagram_write_puts_the_diagram_between_the_markers",
    ),
}
LOCAL_TEST = ("tests/test_e2e_readme.py", "test_the_readme_commands_run_in_order_against_local_up")
# At most this many lines: a few screens.
MAX_LINES = 260


def _diagram_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "asl_diagram", REPO_ROOT / "scripts" / "asl_diagram.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _defines(path: str, name: str) -> bool:
    source = (REPO_ROOT / path).read_text(encoding="utf-8")
    return re.search(rf"^def {re.escape(name)}\(", source, re.MULTILINE) is not None


def test_the_readme_diagram_is_the_one_drawn_from_the_state_machine():
    diagram = _diagram_module()
    drawn = diagram.render(diagram.load_definition())
    assert diagram.readme_diagram(readme_text()) == drawn, (
        "README.md's diagram is stale: run scripts/asl_diagram.py --write"
    )
    # Every state of the ASL is in it.
    for name in diagram.load_definition()["States"]:
        assert re.search(rf"\b{name}\b", drawn), name


def test_asl_diagram_write_puts_the_diagram_between_the_markers(tmp_path: Path):
    diagram = _diagram_module()
    text = f"# t\n\n{diagram.START}\nold\n{diagram.END}\n\nafter\n"
    updated = diagram.with_diagram(text, "```mermaid\nstateDiagram-v2\n```")
    assert diagram.readme_diagram(updated) == "```mermaid\nstateDiagram-v2\n```"
    assert updated.startswith("# t\n\n") and updated.endswith("\n\nafter\n")
    assert diagram.main(["--check"]) == 0


def test_a_choice_rule_reads_as_a_short_condition():
    diagram = _diagram_module()
    assert diagram.condition({"Variable": "$.size", "IsPresent": False}) == "size absent"
    assert (
        diagram.condition(
            {
                "Variable": "$.size",
                "NumericGreaterThanEquals": "${toNumber(${param:sparkThresholdBytes})}",
            }
        )
        == "size >= sparkThresholdBytes"
    )
    both = {"Or": [{"Variable": "$.etl", "IsPresent": True}, {"Variable": "$.e", "IsNull": True}]}
    assert diagram.condition(both) == "etl present or e null"
    parallel = {
        "StartAt": "P",
        "States": {
            "P": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}},
                    {"StartAt": "B", "States": {"B": {"Type": "Pass", "End": True}}},
                ],
                "Next": "Done",
            },
            "Done": {"Type": "Succeed"},
        },
    }
    drawn = diagram.render(parallel)
    assert "state P {" in drawn and "        --" in drawn and "P --> Done" in drawn


def test_the_readme_opens_with_the_demo_and_the_test_command():
    assert bash_commands(readme_text())[:2] == [DEMO, TEST]
    assert re.search(r"^make test$", (REPO_ROOT / ".ci" / "run").read_text(), re.MULTILINE)


def test_every_fenced_command_is_run_by_a_test():
    commands = bash_commands(readme_text())
    assert len(commands) == len(set(commands)), "a command shown twice"
    for command, (path, name) in RUN_ELSEWHERE.items():
        assert command in commands
        if path.startswith("tests/"):
            assert _defines(path, name), (command, path, name)
    assert _defines(*LOCAL_TEST)
    local = [c for c in commands if c not in RUN_ELSEWHERE]
    assert local, "the README shows how to upload and operate"
    # The local-stack test takes its commands from README itself, in order.
    source = (REPO_ROOT / LOCAL_TEST[0]).read_text(encoding="utf-8")
    assert "bash_commands(readme_text())" in source


def test_every_inline_command_is_one_of_those_or_run_by_a_named_test():
    text = readme_text()
    commands = bash_commands(text)
    for path, name in INLINE_RUN_BY.values():
        assert _defines(path, name), (path, name)
    strays = [
        span
        for span in inline_commands(text)
        if span not in INLINE_RUN_BY and not is_prefix_of_any(span, commands)
    ]
    assert strays == []


def _anchors(page: Path) -> set[str]:
    """GitHub's anchors of a page's headings."""
    found, fenced = set(), False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        heading = re.match(r"^#+ (.*)$", line)
        if heading and not fenced:
            words = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower())
            found.add(words.replace(" ", "-"))
    return found


def test_the_readme_fits_on_a_few_screens():
    assert len(readme_text().splitlines()) <= MAX_LINES


@pytest.mark.parametrize(
    "page",
    [
        "README.md",
        *sorted(str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "docs").glob("*.md")),
    ],
)
def test_every_relative_link_resolves_to_a_file_and_heading(page: str):
    source = REPO_ROOT / page
    for target in re.findall(r"\]\((?!https?://)([^)\s]+)\)", source.read_text(encoding="utf-8")):
        path, _, anchor = target.partition("#")
        destination = (source.parent / path).resolve() if path else source
        assert destination.exists(), (page, target)
        if anchor and destination.suffix == ".md":
            assert anchor in _anchors(destination), (page, target)


# ------------------------------------------------------------------ Troubleshooting

# What each Troubleshooting entry must name.
ERRORS = (
    "CopyRoleNotAttachedError",
    "AccessDeniedException",
    "permission denied for schema airlines",
    "no execution started",
    "ConcurrentRunsExceeded",
    "PyPI",
)
# Every whole-file rejection the job raises (flightpipe/etl/), by a phrase of its message, and
# the words of README's Troubleshooting row that covers it.
REJECTIONS = {
    "a folder marker": "folder marker",
    "is not accepted; {ACCEPTED}": "not an accepted file",
    "holding {describe_content(head)} ": "not an accepted file",
    "named .csv but the content is not text": "name and its content disagree",
    "the name claims": "name and its content disagree",
    "(Office Open XML, a zip of XML) named .zip": "not an accepted file",
    "not a readable zip archive": "zip",
    "the zip archive is empty": "zip",
    "the zip holds no CSV member": "zip",
    "CSV members (": "zip",
    "is encrypted; upload it unencrypted": "encrypted",
    "is compressed with method": "compression method",
    "cannot be read:": "zip",
    "data is corrupt": "corrupt",
    "data is truncated": "truncated",
    "unexpected bytes after the end": "stray bytes",
    "the zip member {self._member!r} is corrupt": "corrupt",
    "the object is empty": "empty",
    "it contains NUL bytes": "not text",
    "the object is not UTF-8 text": "not UTF-8",
    "an unterminated quoted field?": "unterminated quote",
    "the header row is not valid CSV text": "no header",
    "the file has no header row": "no header",
    "missing_columns_message(": "required columns missing",
    "the file has a header but no data rows": "no data rows",
    "more than the threshold of": "more than 5%",
}
_RAISE = re.compile(r"raise FileRejected\((.*?)\)(?: from \w+)?\n", re.DOTALL)


def _troubleshooting() -> str:
    text = readme_text()
    start = text.index("## Troubleshooting")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def test_troubleshooting_names_each_error_a_user_meets():
    section = _troubleshooting()
    for error in ERRORS:
        assert error in section, error
    assert "REJECTED" in section


def test_troubleshooting_covers_every_whole_file_rejection_the_job_raises():
    section = _troubleshooting().lower()
    found = []
    for path in sorted((REPO_ROOT / "flightpipe" / "etl").glob("*.py")):
        for raised in _RAISE.findall(path.read_text(encoding="utf-8")):
            if raised.strip() == "result.file_rejected":  # a Spark task's rejection, relayed
                continue
            matches = [phrase for phrase in REJECTIONS if phrase in raised]
            assert matches, f"{path.name}: a rejection README does not cover: {raised.strip()}"
            found.extend(matches)
    assert set(found) == set(REJECTIONS), set(REJECTIONS) - set(found)
    for words in set(REJECTIONS.values()):
        assert words.lower() in section, words


@pytest.mark.parametrize("page", ["deploy", "local-stack", "engines", "operations", "benchmarks"])
def test_the_depth_lives_in_docs_pages_the_readme_links(page: str):
    assert (REPO_ROOT / "docs" / f"{page}.md").is_file()
    assert f"](docs/{page}.md)" in readme_text()
