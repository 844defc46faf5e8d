"""The commands README.md shows: those of its fenced ``bash`` blocks, and the command-like
inline code spans of its prose. tests/test_readme.py checks which test runs each;
tests/test_e2e_readme.py runs the local ones."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
README = REPO_ROOT / "README.md"
_FENCE = re.compile(r"^```bash\n(.*?)^```", re.MULTILINE | re.DOTALL)
_ANY_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
_INLINE = re.compile(r"`([^`\n]+)`")
# How a command starts: inline code spans starting so are commands too.
PROGRAMS = ("make", "npx", "sls", "aws", "flightpipe", "source", "scripts/", ".venv/bin/")


def readme_text() -> str:
    return README.read_text(encoding="utf-8")


def bash_commands(text: str) -> list[str]:
    """Every command of the fenced bash blocks, in order: comments and blank lines dropped,
    backslash continuations joined."""
    commands: list[str] = []
    for block in _FENCE.findall(text):
        pending = ""
        for raw in block.splitlines():
            line = (pending + " " + raw.strip()).strip() if pending else raw.strip()
            pending = ""
            if line.endswith("\\"):
                pending = line[:-1].rstrip()
                continue
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


def inline_commands(text: str) -> list[str]:
    """Inline code spans of the prose (outside fenced blocks) that are commands."""
    prose = _ANY_FENCE.sub("", text)
    spans = [span.strip() for span in _INLINE.findall(prose)]
    return [s for s in spans if s.split(" ", 1)[0].startswith(PROGRAMS) and " " in s]


def tokens(command: str) -> list[str]:
    return shlex.split(command)


def is_prefix_of_any(command: str, commands: list[str]) -> bool:
    """Whether ``command``'s words begin one of ``commands`` (``flightpipe backfill
    --failed-only`` begins ``flightpipe backfill --failed-only --dry-run --local``)."""
    words = tokens(command)
    return any(tokens(other)[: len(words)] == words for other in commands)
