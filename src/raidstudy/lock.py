"""The dependency lock, ``requirements.lock``: its checksum, its pins, and whether it fits.

The lock pins every direct and transitive dependency (with hashes) for CPython 3.11 on
Linux x86_64; ``make setup`` installs from it. This module uses the standard library only,
so ``make setup`` can run it as a script before anything is installed::

    python3 src/raidstudy/lock.py check     # is this Python covered, is the lock up to date?
    python3 src/raidstudy/lock.py checksum  # sha256 of requirements.lock

:func:`lock_checksum` goes into ``run.json`` and the ``provenance`` of ``results.json``; it
is ``None`` where there is no lock (an installed wheel, a copy outside the repository).
"""
from __future__ import annotations

import hashlib
import platform
import re
import sys
from pathlib import Path

__all__ = [
    "LOCK_NAME",
    "UPDATE_COMMAND",
    "lock_path",
    "lock_checksum",
    "lock_pins",
    "lock_python",
    "direct_requirements",
    "satisfies",
    "check",
]

LOCK_NAME = "requirements.lock"
#: How the lock is made (``make lock`` runs it); its own header repeats the command.
UPDATE_COMMAND = (
    "uv pip compile pyproject.toml --extra test --generate-hashes --python-version 3.11.5 "
    "--python-platform x86_64-manylinux_2_28 -o requirements.lock"
)
NO_LOCK_HINT = "or install without the lock: python3 -m venv .venv && .venv/bin/pip install -e '.[test]'"


def _root() -> Path | None:
    """The repository root (the folder with pyproject.toml and src/raidstudy), or None."""
    try:
        from raidstudy.paths import repo_root

        root = repo_root()
    except ImportError:  # run as a script before raidstudy is installed
        root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").exists() and (root / "src" / "raidstudy").exists():
        return root
    return None


def lock_path() -> Path | None:
    """``requirements.lock`` at the repository root, or None when it is absent."""
    root = _root()
    if root is None or not (root / LOCK_NAME).is_file():
        return None
    return root / LOCK_NAME


def lock_checksum(path: str | Path | None = None) -> str | None:
    """sha256 (hex) of the lock file, or None when there is none (e.g. an installed wheel)."""
    p = Path(path) if path is not None else lock_path()
    if p is None or not p.is_file():
        return None
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_pins(text: str) -> dict[str, str]:
    """``{normalised name: version}`` for every ``name==version`` line of a lock."""
    pins = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._\-]*)(\[[^\]]*\])?==([^\s;\\]+)", line)
        if m:
            pins[_norm(m.group(1))] = m.group(3)
    return pins


def lock_direct(text: str) -> set[str]:
    """Names the lock says come straight from this project (``# via raidstudy``)."""
    out, current = set(), None
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._\-]*)==", line)
        if m:
            current = _norm(m.group(1))
            continue
        s = line.strip()
        if current and re.match(r"^#\s*(via\s+)?raidstudy(\s*\(.*\))?$", s):
            out.add(current)
    return out


def lock_python(text: str) -> tuple[int, ...] | None:
    """The ``--python-version`` the lock was compiled for, from its header."""
    m = re.search(r"--python-version[ =](\d+(?:\.\d+)*)", text)
    return tuple(int(x) for x in m.group(1).split(".")) if m else None


def direct_requirements(pyproject: str | Path) -> dict[str, str]:
    """``{normalised name: specifier}`` of pyproject's dependencies and optional dependencies."""
    import tomllib

    data = tomllib.loads(Path(pyproject).read_text())
    reqs = list(data["project"].get("dependencies", []))
    for extra in data["project"].get("optional-dependencies", {}).values():
        reqs += extra
    out = {}
    for r in reqs:
        m = re.match(r"^\s*([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*([^;]*)", r)
        out[_norm(m.group(1))] = m.group(3).replace(" ", "")
    return out


def _release(v: str) -> tuple[int, ...]:
    m = re.match(r"^\d+(\.\d+)*", v)
    return tuple(int(x) for x in m.group(0).split(".")) if m else ()


def _cmp(a: str, b: str) -> int:
    ra, rb = _release(a), _release(b)
    n = max(len(ra), len(rb))
    ra, rb = ra + (0,) * (n - len(ra)), rb + (0,) * (n - len(rb))
    return (ra > rb) - (ra < rb)


def satisfies(version: str, specifier: str) -> bool:
    """Whether ``version`` meets a simple PEP 440 specifier such as ``>=1.26,<3`` (release parts only)."""
    for clause in filter(None, specifier.split(",")):
        m = re.match(r"^(~=|==|!=|<=|>=|<|>)(.+)$", clause)
        if not m:
            raise ValueError(f"unsupported specifier {clause!r}")
        op, v = m.groups()
        if v.endswith(".*"):
            prefix = _release(v[:-2])
            ok = _release(version)[: len(prefix)] == prefix
            if (op == "==") != ok:
                return False
            continue
        c = _cmp(version, v)
        if op == "~=":
            upper = _release(v)[:-1]
            ok = c >= 0 and _release(version)[: len(upper)] == upper
        else:
            ok = {"==": c == 0, "!=": c != 0, "<=": c <= 0, ">=": c >= 0, "<": c < 0, ">": c > 0}[op]
        if not ok:
            return False
    return True


def python_problem(text: str, version: tuple[int, ...] | None = None) -> str | None:
    """One sentence when this interpreter or platform is not what the lock covers, else None."""
    want = lock_python(text)
    have = tuple(version or sys.version_info[:3])
    system, machine = platform.system(), platform.machine()
    covered = (
        want is not None
        and have[:2] == want[:2]
        and have >= want
        and system == "Linux"
        and machine in ("x86_64", "AMD64")
    )
    if covered:
        return None
    mm = ".".join(map(str, (want or (3, 11))[:2]))
    wanted = ".".join(map(str, want or ())) or mm
    here = f"{Path(sys.executable).name if sys.executable else 'python3'} is Python {'.'.join(map(str, have))} on {system} {machine}"
    no_lock = ("or install the newest allowed versions without the lock: `make setup RAIDSTUDY_NO_LOCK=1` "
               "(or python3 -m venv .venv && .venv/bin/pip install -e '.[test]')")
    if system != "Linux" or machine not in ("x86_64", "AMD64"):
        todo = ""
    elif want is not None and have[:2] == want[:2]:  # the right minor version, too old a patch release
        todo = f"run `make setup PYTHON=/path/to/python{mm}` with Python {wanted} or a later {mm}.x, "
    else:
        todo = f"run `make setup PYTHON=python{mm}` (Python {wanted} or a later {mm}.x), "
    return f"{LOCK_NAME} is for CPython {wanted} or a later {mm}.x on Linux x86_64, and {here}: {todo}{no_lock}"


def stale_problems(text: str, pyproject: str | Path) -> list[str]:
    """How the lock disagrees with pyproject.toml (empty when it is up to date)."""
    reqs = direct_requirements(pyproject)
    pins = lock_pins(text)
    out = []
    for name, spec in sorted(reqs.items()):
        if name not in pins:
            out.append(f"{name} is in pyproject.toml but not in {LOCK_NAME}")
        elif spec and not satisfies(pins[name], spec):
            out.append(f"{LOCK_NAME} pins {name}=={pins[name]}, outside pyproject.toml's {spec}")
    for name in sorted(lock_direct(text) - set(reqs)):
        out.append(f"{LOCK_NAME} has {name} for raidstudy, which pyproject.toml no longer asks for")
    return out


def check(root: str | Path | None = None, *, python_version: tuple[int, ...] | None = None) -> list[str]:
    """Every reason the lock cannot be used as it is; empty when it can."""
    root = Path(root) if root is not None else _root()
    if root is None or not (root / LOCK_NAME).is_file():
        return [f"no {LOCK_NAME}: run `make lock` ({UPDATE_COMMAND}), {NO_LOCK_HINT}"]
    text = (root / LOCK_NAME).read_text()
    py = python_problem(text, python_version)
    if py:
        return [py]
    stale = stale_problems(text, root / "pyproject.toml")
    if stale:
        return [
            f"{LOCK_NAME} is out of date with pyproject.toml ({'; '.join(stale)}): "
            f"run `make lock` (that is, {UPDATE_COMMAND}), then `make setup`"
        ]
    return []


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    cmd = args[0] if args else "check"
    if cmd == "checksum":
        print(lock_checksum() or "")
        return 0
    if cmd == "check":
        problems = check()
        for p in problems:
            print(f"make setup: {p}", file=sys.stderr)
        return 1 if problems else 0
    print("usage: python3 src/raidstudy/lock.py [check|checksum]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
