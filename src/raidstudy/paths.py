"""Where things live. Every path the project uses is relative to the repository root.

``../shared`` (the data beside the project) is optional: :func:`shared_dir` returns
``None`` when it is absent, and callers must cope.
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "repo_root",
    "data_dir",
    "processed_dir",
    "interim_dir",
    "raw_dir",
    "results_dir",
    "shared_dir",
    "default_dumps_dir",
    "display_path",
]


def repo_root() -> Path:
    """The repository root: ``RAIDSTUDY_ROOT`` if set, else the folder holding ``pyproject.toml``
    above this file (an editable install), else the current directory."""
    env = os.environ.get("RAIDSTUDY_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").exists() and (parent / "src" / "raidstudy").exists():
            return parent
    return Path.cwd().resolve()


def data_dir() -> Path:
    return repo_root() / "data"


def processed_dir() -> Path:
    return data_dir() / "processed"


def interim_dir() -> Path:
    return data_dir() / "interim"


def raw_dir() -> Path:
    return data_dir() / "raw"


def results_dir() -> Path:
    return repo_root() / "results"


def shared_dir() -> Path | None:
    """``../shared`` beside the repository (or ``RAIDSTUDY_SHARED``), or ``None`` when absent."""
    env = os.environ.get("RAIDSTUDY_SHARED")
    cand = Path(env) if env else repo_root().parent / "shared"
    # absolute but not resolved: a ../shared that is a symbolic link keeps its name, so
    # paths recorded relative to the repository read the same on every machine
    return Path(os.path.abspath(cand)) if cand.is_dir() else None


def default_dumps_dir() -> Path:
    """The nZEDb dumps: ``../shared/data/raw/nzedb-predb-dumps`` when present, else ``data/raw/nzedb``."""
    sh = shared_dir()
    if sh is not None:
        cand = sh / "data" / "raw" / "nzedb-predb-dumps"
        if cand.is_dir():
            return cand
    return raw_dir() / "nzedb"


def display_path(p: str | os.PathLike, *, keep_absolute: bool = False) -> str:
    """``p`` relative to the repository root (or as ``../shared/...``) when possible.

    Used for every path written to disk or shown to the user, so that no machine path is
    recorded. A path outside both is returned as its file name, or as given (absolute)
    with ``keep_absolute=True`` (for messages that must say where a file is).
    """
    root = repo_root()
    # try the path as given (made absolute, links kept) before the resolved one, so that a
    # ../shared that is a symbolic link is still recorded as ../shared/...
    for cand in (Path(os.path.abspath(p)), Path(p).resolve()):
        for base, prefix in ((root, ""), (root.parent, "../")):
            try:
                return prefix + cand.relative_to(base).as_posix()
            except ValueError:
                continue
    return Path(p).as_posix() if keep_absolute else Path(p).name
