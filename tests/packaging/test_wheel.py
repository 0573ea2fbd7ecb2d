"""The binary wheel as a user meets it: installed from wheelhouse/ into a fresh venv
(dependencies from PyPI), far from the source tree, on a machine where the only native
libraries it may use from the system are glibc's and the C++ runtime's.

The wheel comes from ``scripts/wheel.sh wheel``; one built earlier in the same run (newer
than every source file) is reused, so ``make test`` pays for the build once.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parents[2]
WHEELHOUSE = ROOT / "wheelhouse"
SOURCES = ("CMakeLists.txt", "pyproject.toml", "scripts/wheel.sh", "cpp", "python")

# What a manylinux wheel may take from the system (glibc, the GCC runtime, the loader,
# and zlib, which every manylinux policy guarantees); anything else must resolve to the
# wheel's own copy.
SYSTEM_LIBRARIES = re.compile(
    r"^(linux-vdso|ld-linux[-\w]*|libc|libm|libdl|librt|libpthread|libresolv|libutil|"
    r"libstdc\+\+|libgcc_s|libz)\.so"
)
# The native dependencies of the extension and of librdkafka that must be vendored.
VENDORED = ("librdkafka", "librdkafka++", "libhiredis", "libssl", "libcrypto", "libzstd", "liblz4")


def newest_source_mtime() -> float:
    newest = 0.0
    for name in SOURCES:
        path = ROOT / name
        files = [path] if path.is_file() else path.rglob("*")
        for file in files:
            if file.is_file() and "__pycache__" not in file.parts:
                newest = max(newest, file.stat().st_mtime)
    return newest


def fresh_wheel() -> Path | None:
    wheels = sorted(WHEELHOUSE.glob("sessionstream-*.whl"))
    if len(wheels) == 1 and wheels[0].stat().st_mtime > newest_source_mtime():
        return wheels[0]
    return None


@pytest.fixture(scope="session")
def wheel() -> Path:
    built = fresh_wheel()
    if built is None:
        result = subprocess.run(
            ["bash", str(ROOT / "scripts" / "wheel.sh"), "wheel"],
            capture_output=True,
            text=True,
            timeout=1800,
        )
        assert result.returncode == 0, f"scripts/wheel.sh failed:\n{result.stdout}\n{result.stderr}"
        built = fresh_wheel()
    assert built is not None, f"no fresh wheel in {WHEELHOUSE}"
    return built


def clean_env(home: Path, venv: Path | None = None) -> dict[str, str]:
    """No PYTHONPATH, no LD_LIBRARY_PATH, nothing of the source tree's environment."""
    path = "/usr/local/bin:/usr/bin:/bin"
    if venv is not None:
        path = f"{venv / 'bin'}:{path}"
    return {
        "PATH": path,
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }


@dataclass
class Installed:
    venv: Path
    python: Path
    site_packages: Path
    home: Path

    def run(self, *code: str, cwd: Path | None = None) -> str:
        result = subprocess.run(
            [str(self.python), "-c", "\n".join(code)],
            cwd=cwd or self.home,
            env=clean_env(self.home, self.venv),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout


@pytest.fixture(scope="session")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("wheel-venv")
    home = base / "home"
    home.mkdir()
    venv = base / "venv"
    # The system interpreter, not this test's venv: nothing of ours leaks in.
    python = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin") or sys.executable
    subprocess.run([python, "-m", "venv", str(venv)], check=True, env=clean_env(home), timeout=120)
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", f"{wheel}[server]"],
        cwd=home,
        env=clean_env(home, venv),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"pip install {wheel.name} failed:\n{result.stderr}"
    probe = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import sysconfig; print(sysconfig.get_path('purelib'))",
        ],
        env=clean_env(home, venv),
        capture_output=True,
        text=True,
        check=True,
    )
    return Installed(venv, venv / "bin" / "python", Path(probe.stdout.strip()), home)


def test_the_wheel_is_manylinux_tagged_as_the_readme_says(wheel: Path) -> None:
    match = re.search(r"-manylinux_(\d+)_(\d+)_x86_64\.whl$", wheel.name)
    assert match, f"{wheel.name} carries no manylinux tag: auditwheel did not repair it"
    floor = f"{match[1]}.{match[2]}"
    readme = (ROOT / "README.md").read_text()
    assert f"glibc {floor} or newer" in readme, f"README does not state the glibc floor {floor}"


def test_the_wheel_vendors_the_native_libraries(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    libs = [Path(n).name for n in names if n.startswith("sessionstream.libs/")]
    for wanted in VENDORED:
        assert any(lib.startswith(wanted + "-") for lib in libs), f"{wanted} not in {libs}"
    assert "sessionstream/py.typed" in names
    assert not any(n.startswith(("tests/", "bench/", "build/")) for n in names)


def test_the_extension_resolves_its_libraries_inside_the_wheel(installed: Installed) -> None:
    (extension,) = (installed.site_packages / "sessionstream").glob("_core*.so")
    libs_dir = (installed.site_packages / "sessionstream.libs").resolve()
    result = subprocess.run(
        ["ldd", str(extension)], env=clean_env(installed.home), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    resolved: dict[str, str] = {}
    for line in result.stdout.splitlines():
        name, arrow, target = line.strip().partition(" => ")
        assert "not found" not in target, f"unresolved: {line.strip()}"
        if not arrow:  # the vDSO and the loader: "<path> (0x...)"
            name = target = name.split(" (")[0]
        # RPATH is $ORIGIN/../sessionstream.libs: compare real paths.
        resolved[Path(name.split()[0]).name] = os.path.realpath(target.split(" (")[0])
    for wanted in VENDORED:
        hits = {n: t for n, t in resolved.items() if n.startswith(wanted + "-")}
        assert hits, f"{wanted} is not among the extension's libraries: {sorted(resolved)}"
        for target in hits.values():
            assert Path(target).parent == libs_dir, f"{wanted} resolved to {target}"
    from_system = [
        f"{n} => {t}"
        for n, t in resolved.items()
        if not SYSTEM_LIBRARIES.match(n) and Path(t).parent != libs_dir
    ]
    assert not from_system, f"taken from the system instead of the wheel: {from_system}"


def test_the_installed_package_is_the_wheel_and_its_version_agrees(
    installed: Installed, wheel: Path
) -> None:
    out = installed.run(
        "import json, importlib.metadata as md, sessionstream, sessionstream._core as core",
        "print(json.dumps({'version': sessionstream.__version__,",
        "  'metadata': md.version('sessionstream'), 'file': sessionstream.__file__,",
        "  'kafka': core.HAS_KAFKA, 'redis': core.HAS_REDIS,",
        "  'librdkafka': core.librdkafka_version(),",
        "  'extras': md.metadata('sessionstream').get_all('Provides-Extra')}))",
    )
    info = json.loads(out)
    source_version = re.search(
        r'__version__ = "([^"]+)"', (ROOT / "python/sessionstream/_version.py").read_text()
    )
    assert source_version
    assert info["version"] == info["metadata"] == source_version[1]
    assert wheel.name.startswith(f"sessionstream-{info['version']}-")
    assert Path(info["file"]).is_relative_to(installed.site_packages)
    assert info["kafka"] and info["redis"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", info["librdkafka"])
    assert {"server", "testing", "testing-browser"} <= set(info["extras"])


@pytest.fixture
def quickstart(installed: Installed, tmp_path: Path) -> Iterator[str]:
    """examples/quickstart.py copied next to nothing else and served with the installed
    ``sessionstream serve``, on a loopback socket it inherits."""
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    shutil.copy(ROOT / "examples" / "quickstart.py", app_dir / "quickstart.py")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    log = (tmp_path / "server.log").open("w+")
    process = subprocess.Popen(
        [str(installed.venv / "bin" / "sessionstream"), "serve", "quickstart:app"]
        + ["--fd", str(listener.fileno()), "--log-level", "info"],
        cwd=app_dir,
        env=clean_env(installed.home, installed.venv),
        pass_fds=[listener.fileno()],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    listener.close()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"quickstart server did not come up:\n{log.read()}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_the_quickstart_streams_from_the_installed_wheel(quickstart: str) -> None:
    with httpx.Client(base_url=quickstart, timeout=10) as client:
        with client.stream("GET", "/stream/sse", params={"channel": "news"}) as stream:
            assert stream.status_code == 200
            lines = stream.iter_lines()
            # The id-only frame that gives a fresh stream its position: it is subscribed.
            assert next(lines).startswith(("id:", ":", "retry:"))
            health = client.get("/health").json()
            assert health["delivery"]["mode"] == "native", health["delivery"]
            event_id = client.post("/announce", params={"text": "from the wheel"}).json()["id"]
            frame: dict[str, str] = {}
            for line in lines:
                if not line:
                    if frame.get("event") == "announcement":
                        break
                    frame = {}
                    continue
                field, _, value = line.partition(":")
                frame[field] = value.removeprefix(" ")
    assert frame == {"id": event_id, "event": "announcement", "data": '{"text":"from the wheel"}'}
