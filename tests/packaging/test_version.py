"""One version, written once (python/sessionstream/_version.py), read by everything."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib

import sessionstream

ROOT = Path(__file__).resolve().parents[2]
VERSION_FILE = "python/sessionstream/_version.py"


def written_version() -> str:
    match = re.search(r'^__version__ = "([^"]+)"$', (ROOT / VERSION_FILE).read_text(), re.M)
    assert match, f"{VERSION_FILE} lost its __version__ line"
    return match[1]


def test_the_build_reads_the_version_from_the_package() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"]
    assert "version" in pyproject["project"]["dynamic"]
    provider = pyproject["tool"]["scikit-build"]["metadata"]["version"]
    assert provider == {"provider": "scikit_build_core.metadata.regex", "input": VERSION_FILE}


def test_the_package_reports_the_written_version() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", written_version())
    assert sessionstream.__version__ == written_version()


def test_cmake_and_the_changelog_name_the_same_version() -> None:
    cmake = re.search(
        r"project\(sessionstream VERSION (\S+)", (ROOT / "CMakeLists.txt").read_text()
    )
    assert cmake and cmake[1] == written_version()
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert re.search(
        rf"^## \[{re.escape(written_version())}\] - \d{{4}}-\d{{2}}-\d{{2}}$", changelog, re.M
    )
