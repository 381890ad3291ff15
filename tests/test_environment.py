"""pyproject.toml, requirements.lock and environment.yml agree.

pyproject.toml states the ranges; requirements.lock pins every package (direct and
transitive) inside them for CPython 3.11 on Linux x86_64, with hashes; environment.yml gives
conda users Python and pip, then installs the lock with pip. Slow checks, which CI runs after
`make test` (.ci/run: ``pytest -m slow tests/test_environment.py`` with
``RAIDSTUDY_REPRODUCE=strict``, so committed results made with another lock fail there):
the SPARKS study rebuilt in the locked environment gives results.json byte for byte as
committed, and environment.yml's pip step, carried out as conda carries it out, installs
exactly the lock.

conda itself is not on the test machines (nor conda-forge within reach): its own step,
Python and pip from conda-forge, is the one part not exercised here."""
from __future__ import annotations

import hashlib
import os
import platform
import re
import tomllib
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from raidstudy import lock

yaml = pytest.importorskip("yaml")
ROOT = Path(__file__).resolve().parents[1]


def _split(req: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*(.*)$", req)
    assert m, req
    return m.group(1).lower().replace("_", "-"), m.group(3).replace(" ", "")


def _pyproject() -> dict[str, str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    reqs = list(data["project"]["dependencies"])
    for extra in data["project"].get("optional-dependencies", {}).values():
        reqs += extra
    return dict(_split(r) for r in reqs)


def _environment() -> tuple[dict, list[str], list[str]]:
    """environment.yml as conda reads it: the file, its conda packages, its pip lines."""
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda, pip = [], []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip += dep.get("pip", [])
        else:
            conda.append(dep)
    return env, conda, pip


def _lock() -> dict[str, str]:
    return lock.lock_pins((ROOT / lock.LOCK_NAME).read_text())


def test_environment_is_python_and_pip_then_the_lock():
    """conda installs Python and pip only; every package comes from the lock, so a conda
    environment holds the same wheels as `make setup`'s (no conda-forge builds of numpy and
    the rest, whose results differ in the last digits)."""
    env, conda, pip = _environment()
    assert env["name"] == "raidstudy" and env["channels"] == ["conda-forge"]
    assert [_split(d)[0] for d in conda] == ["python", "pip"], conda
    assert pip == [f"-r {lock.LOCK_NAME}"], pip
    header = (ROOT / "environment.yml").read_text()
    assert "pip install --no-deps -e ." in header, "the command that installs raidstudy itself must be stated"


def test_the_project_venv_has_its_own_pip():
    """`make setup` makes .venv without pip (3 s saved) and must give it pip afterwards: users
    and the pip fallback run .venv/bin/pip."""
    import subprocess
    import sys

    venv = ROOT / ".venv"
    if Path(sys.prefix).resolve() != venv.resolve():
        pytest.skip("not running in the project's .venv (made by `make setup`)")
    out = subprocess.run([str(venv / "bin" / "pip"), "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and str(venv) in out.stdout, out.stderr


def test_lock_pins_every_direct_dependency_inside_its_range():
    pins = _lock()
    missing = sorted(set(_pyproject()) - set(pins))
    assert not missing, f"in pyproject.toml but not in requirements.lock: {missing}; run `make lock`"
    outside = {k: (pins[k], spec) for k, spec in _pyproject().items()
               if Version(pins[k]) not in SpecifierSet(spec)}
    assert not outside, f"lock versions outside pyproject's ranges: {outside}; run `make lock`"


def test_lock_is_hashed_and_for_linux_python_311():
    text = (ROOT / lock.LOCK_NAME).read_text()
    entries = re.findall(r"^[A-Za-z0-9][^\s]*==[^\s]+", text, flags=re.M)
    assert len(entries) == len(_lock()) > len(_pyproject())
    assert text.count("--hash=sha256:") >= len(entries)
    assert lock.lock_python(text)[:2] == (3, 11)
    assert "--python-platform x86_64-" in text and "--generate-hashes" in text


def test_lock_check_passes_here_and_the_update_command_is_the_locks_own():
    assert lock.check(ROOT, python_version=lock.lock_python((ROOT / lock.LOCK_NAME).read_text())) == []
    header = (ROOT / lock.LOCK_NAME).read_text().splitlines()[1]
    assert header.strip().lstrip("#").strip() == lock.UPDATE_COMMAND


def test_stale_lock_says_what_to_run(tmp_path):
    (tmp_path / "src" / "raidstudy").mkdir(parents=True)
    text = (ROOT / lock.LOCK_NAME).read_text()
    (tmp_path / lock.LOCK_NAME).write_text(text)
    pyproject = (ROOT / "pyproject.toml").read_text()
    (tmp_path / "pyproject.toml").write_text(pyproject.replace('"numpy>=1.26",', '"numpy>=99", "newpkg>=1",'))
    (msg,) = lock.check(tmp_path, python_version=lock.lock_python(text))
    assert "out of date with pyproject.toml" in msg and "make lock" in msg
    assert "newpkg" in msg and "numpy" in msg
    (tmp_path / "pyproject.toml").write_text(pyproject.replace('"tabulate>=0.9",', ""))
    (msg,) = lock.check(tmp_path, python_version=lock.lock_python(text))
    assert "tabulate" in msg and "no longer" in msg


@pytest.mark.parametrize("version", [(3, 12, 1), (3, 10, 14), (3, 11, 0), (3, 11, 2)])
def test_uncovered_python_gives_one_clear_message(version):
    problems = lock.check(ROOT, python_version=version)
    assert len(problems) == 1
    (msg,) = problems
    assert ".".join(map(str, version)) in msg and "RAIDSTUDY_NO_LOCK=1" in msg and "pip install -e" in msg
    if version[:2] == (3, 11):  # python3.11 may be this very interpreter: ask for a newer one
        assert "PYTHON=/path/to/python3.11" in msg and "3.11.5 or a later 3.11.x" in msg
    else:
        assert "PYTHON=python3.11" in msg


def test_lock_check_runs_on_old_pythons_as_a_script():
    """`make setup` runs lock.py with whatever python3 is: it must get as far as the message."""
    import shutil
    import subprocess

    for exe in ("python3.8", "python3.10", "python3.12"):
        path = shutil.which(exe)
        if path is None or subprocess.run([path, "-c", "pass"], capture_output=True).returncode:
            continue  # absent, or a pyenv shim of a version not selected
        proc = subprocess.run([path, str(ROOT / "src" / "raidstudy" / "lock.py"), "check"],
                              capture_output=True, text=True, cwd=ROOT)
        assert proc.returncode == 1 and proc.stderr.count("make setup:") == 1, proc.stderr
        assert "RAIDSTUDY_NO_LOCK=1" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("version,spec", [
    ("2.4.6", ">=1.26"), ("0.14.1", ">=0.14.1"), ("0.14.0", ">=0.14.1"), ("2024.1", ">=2024.1,<2025"),
    ("3.0", "~=2.5"), ("2.9", "~=2.5"), ("1.2.3", "==1.2.*"), ("1.3", "!=1.3"), ("10.0", ">9.99"),
])
def test_simple_specifier_matches_packaging(version, spec):
    assert lock.satisfies(version, spec) == (Version(version) in SpecifierSet(spec))


def test_lock_checksum(tmp_path):
    assert lock.lock_checksum(tmp_path / "absent.lock") is None
    (tmp_path / "x.lock").write_bytes(b"abc")
    assert lock.lock_checksum(tmp_path / "x.lock") == hashlib.sha256(b"abc").hexdigest()
    assert lock.lock_checksum() == hashlib.sha256((ROOT / lock.LOCK_NAME).read_bytes()).hexdigest()


def test_python_versions_agree():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    _, conda, _ = _environment()
    (py,) = [_split(d)[1] for d in conda if _split(d)[0] == "python"]
    locked = ".".join(map(str, lock.lock_python((ROOT / lock.LOCK_NAME).read_text())))
    assert Version(locked) in SpecifierSet(data["project"]["requires-python"])
    assert py == f">={locked},<3.12", f"environment.yml's python should be the lock's: >={locked},<3.12"


def _locked_environment_or_skip() -> None:
    """Skip unless every package of the lock is installed at the lock's version."""
    from importlib import metadata

    differ = {}
    for name, version in _lock().items():
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            have = None
        if have is None or Version(have) != Version(version):
            differ[name] = (have, version)
    if differ:
        pytest.skip(f"not the locked environment (installed, lock): {dict(list(differ.items())[:5])}; run `make setup`")
    if lock.python_problem((ROOT / lock.LOCK_NAME).read_text()):
        pytest.skip("this Python is not the one requirements.lock covers")


@pytest.mark.slow
def test_locked_environment_reproduces_the_committed_sparks_results(tmp_path):
    import json
    import subprocess
    import sys

    _locked_environment_or_skip()
    committed = ROOT / "docs" / "sparks-2020-results.json"
    prov = json.loads(committed.read_text())["provenance"]
    if prov.get("lock_sha256") != lock.lock_checksum():
        msg = ("docs/sparks-2020-results.json was not made with this requirements.lock "
               "(provenance.lock_sha256 differs): regenerate it with `make run` and `make readme`")
        # CI (.ci/run) sets RAIDSTUDY_REPRODUCE=strict: a lock changed without regenerating fails there
        if os.environ.get("RAIDSTUDY_REPRODUCE") == "strict":
            pytest.fail(msg)
        pytest.skip(msg)
    if prov.get("python") != platform.python_version():
        pytest.skip(f"docs/sparks-2020-results.json records Python {prov.get('python')}, "
                    f"this is {platform.python_version()}")
    out = tmp_path / "sparks-2020"
    # as on a machine with more cores than this one: the runner gives the kernel one BLAS
    # thread whatever the caller's setting (runs.KERNEL_THREADS), so the bytes do not move
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "4", "OMP_NUM_THREADS": "4"}
    subprocess.run([sys.executable, "-m", "raidstudy.cli", "run", str(ROOT / "notebooks" / "02-event-study.ipynb"),
                    "-p", "output_dir", str(out)], cwd=ROOT, check=True, capture_output=True, env=env)
    import difflib

    got = (out / "results.json").read_text()
    diff = list(difflib.unified_diff(committed.read_text().splitlines(), got.splitlines(),
                                     "docs/sparks-2020-results.json", "this run", n=0, lineterm=""))
    assert (out / "results.json").read_bytes() == committed.read_bytes(), (
        "results.json from the locked environment differs from docs/sparks-2020-results.json "
        f"({len(diff)} diff lines; regenerate the committed copy with `make run` and `make readme` "
        "if the change is intended):\n" + "\n".join(diff[:40]))


@pytest.mark.slow
def test_conda_pip_step_installs_exactly_the_lock(tmp_path):
    """environment.yml's pip step, carried out as conda carries it out, then the README's
    `pip install --no-deps -e .`: the environment holds every package of the lock at its
    version and nothing else but the installer's own (pip, setuptools), raidstudy and its console script work, and `pip check`
    finds nothing missing. (conda-env writes the pip lines to a condaenv.*.requirements.txt
    beside environment.yml and runs ``pip install -U -r <that file> --exists-action=b`` from
    that folder.) Here the venv stands in for conda's Python and pip: 1-2 minutes with pip's
    cache warm."""
    import json
    import subprocess
    import sys
    import venv

    if lock.python_problem((ROOT / lock.LOCK_NAME).read_text()):
        pytest.skip("this Python is not the one requirements.lock covers")
    _, _, pip_lines = _environment()
    folder = tmp_path / "checkout"
    folder.mkdir()
    for name in ("environment.yml", lock.LOCK_NAME):
        (folder / name).write_bytes((ROOT / name).read_bytes())
    (folder / "condaenv.test.requirements.txt").write_text("\n".join(pip_lines))
    env_dir = tmp_path / "env"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = str(env_dir / "bin" / "python")
    quiet = ["--quiet", "--disable-pip-version-check"]
    subprocess.run([py, "-m", "pip", "install", *quiet, "-U", "-r", "condaenv.test.requirements.txt",
                    "--exists-action=b"], cwd=folder, check=True)
    subprocess.run([py, "-m", "pip", "install", *quiet, "--no-deps", "-e", str(ROOT)], check=True)
    listed = json.loads(subprocess.run([py, "-m", "pip", "list", "--format", "json"], check=True,
                                       capture_output=True, text=True).stdout)
    have = {p["name"].lower().replace("_", "-"): p["version"] for p in listed}
    pins = _lock()
    differ = {k: (have.get(k), v) for k, v in pins.items() if have.get(k) is None or Version(have[k]) != Version(v)}
    assert not differ, f"installed differs from requirements.lock (installed, lock): {differ}"
    extra = sorted(set(have) - set(pins) - {"pip", "setuptools", "wheel", "raidstudy"})  # the installer's own
    assert not extra, f"installed but not in requirements.lock: {extra}"
    check = subprocess.run([py, "-m", "pip", "check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    cli = subprocess.run([str(env_dir / "bin" / "raidstudy"), "events"], capture_output=True, text=True, cwd=ROOT)
    assert cli.returncode == 0 and "sparks_2020" in cli.stdout, cli.stderr
