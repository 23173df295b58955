"""The files beside the package say what its metadata says: the license, the version, the
changelog and the citation; and each console script is a command's ``main``."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
DISTRIBUTION = metadata.distribution("lit-alexnet")
# The commands: each a `python -m lit_alexnet.X` and a `lit-alexnet-Y` console script.
COMMANDS = {
    "train": "train",
    "evaluate": "evaluate",
    "predict": "predict",
    "figures": "figures",
    "report": "report",
    "figure1": "figure1",
    "stats": "stats",
    "prepare": "data.prepare",
    "verify": "data.verify",
    "bench": "bench.__main__",
}


def test_the_license_file_is_the_declared_apache_2() -> None:
    declared = DISTRIBUTION.metadata["License-Expression"] or DISTRIBUTION.metadata["License"]
    assert declared == "Apache-2.0"
    text = (REPO / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


def test_the_citation_and_changelog_know_this_version() -> None:
    citation = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert citation["version"] == DISTRIBUTION.version
    assert citation["license"] == "Apache-2.0"
    assert citation["preferred-citation"]["year"] == 2012
    assert f"## {DISTRIBUTION.version} (" in (REPO / "CHANGELOG.md").read_text()


def test_every_console_script_is_a_commands_main() -> None:
    scripts = {e.name: e for e in DISTRIBUTION.entry_points if e.group == "console_scripts"}
    assert set(scripts) == {f"lit-alexnet-{name}" for name in COMMANDS}
    for name, module in COMMANDS.items():
        script = scripts[f"lit-alexnet-{name}"]
        assert script.value == f"lit_alexnet.{module}:main", name
        assert callable(script.load()), name
