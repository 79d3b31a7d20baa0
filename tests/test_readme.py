"""The README's first two commands are the contract with a new user; CI runs (2)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", text, re.DOTALL)
    lines = [ln for b in blocks for ln in b.splitlines() if ln.strip() and not ln.startswith("#")]
    return lines


def test_first_two_commands_install_serve_and_test() -> None:
    first, second = _commands()[:2]
    assert "pip install" in first and first.endswith("opencic serve")
    assert "'.[test]'" in second and "pytest" in second


def test_ci_runs_readme_command_two_verbatim() -> None:
    second = _commands()[1]
    ci = (REPO / ".ci" / "run").read_text()
    assert second in ci.splitlines()
