"""The sdist: complete enough for CMake, and ``pip install`` from it on a machine missing a
build package stops with a message naming the Debian/Ubuntu package to install.

The missing package is real as far as the build can tell: ``PKG_CONFIG_LIBDIR`` pointing
at an empty directory hides every ``.pc`` file (librdkafka, hiredis), and CMake's
``CMAKE_DISABLE_FIND_PACKAGE_Boost`` makes ``find_package(Boost)`` find nothing.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parents[2]
BUILD_PACKAGES = "g++ cmake ninja-build pkg-config python3-dev libboost-dev librdkafka-dev"


@pytest.fixture(scope="module")
def sdist() -> Path:
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "wheel.sh"), "sdist"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, (
        f"scripts/wheel.sh sdist failed:\n{result.stdout}\n{result.stderr}"
    )
    (built,) = (ROOT / "dist").glob("sessionstream-*.tar.gz")
    return built


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("sdist") / "venv"
    python = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin") or sys.executable
    subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=120)
    return venv


def test_the_sdist_holds_the_sources_and_not_the_tree(sdist: Path, tmp_path: Path) -> None:
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
        archive.extractall(tmp_path, filter="data")
    for wanted in ("CMakeLists.txt", "pyproject.toml", "README.md", "CHANGELOG.md", "PKG-INFO"):
        assert wanted in names
    assert "python/sessionstream/_version.py" in names
    assert "python/sessionstream/py.typed" in names
    assert not [n for n in names if n.startswith(("tests/", "bench/", "build/", "dist/"))]
    # Configuring and generating checks that every source file CMake names is there.
    (source,) = tmp_path.iterdir()
    pybind11_dir = subprocess.run(
        [sys.executable, "-m", "pybind11", "--cmakedir"], capture_output=True, text=True, check=True
    ).stdout.strip()
    result = subprocess.run(
        ["cmake", "-S", str(source), "-B", str(tmp_path / "build"), "-G", "Ninja"]
        + [f"-Dpybind11_DIR={pybind11_dir}", f"-DPython_EXECUTABLE={sys.executable}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def pip_install(
    venv: Path, sdist: Path, home: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    empty = home / "no-pkgconfig"
    empty.mkdir(exist_ok=True)
    env = {
        "PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PKG_CONFIG_LIBDIR": str(empty),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    return subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-v",
            *args,
            str(sdist),
        ],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


KAFKA_OFF = "--config-settings=cmake.define.SESSIONSTREAM_WITH_KAFKA=OFF"
NO_BOOST = "--config-settings=cmake.define.CMAKE_DISABLE_FIND_PACKAGE_Boost=ON"


@pytest.mark.parametrize(
    ("pip_args", "messages"),
    [
        pytest.param(
            (),
            [
                "sessionstream: librdkafka 2.0 or newer (rdkafka++) not found.",
                "On Debian/Ubuntu: apt-get install librdkafka-dev",
                BUILD_PACKAGES,
                "-DSESSIONSTREAM_WITH_KAFKA=OFF",
            ],
            id="librdkafka",
        ),
        pytest.param(
            (KAFKA_OFF,),
            [
                "sessionstream: hiredis 0.14 or newer not found.",
                "On Debian/Ubuntu: apt-get install libhiredis-dev",
            ],
            id="hiredis",
        ),
        pytest.param(
            (NO_BOOST,),
            [
                "sessionstream: Boost 1.74 or newer (headers) not found.",
                "On Debian/Ubuntu: apt-get install libboost-dev",
            ],
            id="boost",
        ),
    ],
)
def test_installing_without_a_build_package_names_the_debian_package(
    sdist: Path, fresh_venv: Path, tmp_path: Path, pip_args: tuple[str, ...], messages: list[str]
) -> None:
    result = pip_install(fresh_venv, sdist, tmp_path, *pip_args)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0
    for message in messages:
        assert message in output
