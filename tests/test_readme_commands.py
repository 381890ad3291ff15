"""The README's shell commands run as written (issue 14, part 6).

Every fenced ``bash``/``sh``/``shell`` block of README.md is checked:

* statically, all of them: ``bash -n`` accepts it; every command it runs is a shell
  builtin, a program on a fresh machine's PATH (``python3``, ``mkdir``, ...), a program of
  ``.venv/bin`` (only after the README has said ``source .venv/bin/activate``), or a
  ``make`` target of the Makefile; every input it names (``notebooks/...``, ``plans/...``,
  ``examples/...``, ``data/...``, any ``.csv``, ``.ipynb``, ``.yaml`` or ``.json`` outside
  ``results/``) exists;
* by running it, the quick ones: in a sandbox folder under ``tmp_path`` that links the
  repository's ``notebooks/``, ``plans/``, ``examples/`` and ``.venv`` (read only), holds a
  copy of ``data/`` (without ``raw/`` and ``interim/``) and is the repository for raidstudy
  (``RAIDSTUDY_ROOT``), so outputs such as ``results/...`` land in ``tmp_path``. A block runs with ``bash -euo pipefail`` after the
  activation the README showed before it, as a reader following it in one shell would.

A block is not run when the line before its fence is an HTML comment
``<!-- readme-test: skip (reason) -->`` (long commands: ``make run``, several whole studies,
a Dask scheduler that does not exist); the static checks still apply to it. A block that
runs a study (``raidstudy run``, ``raidstudy batch``, ``papermill``; 15-30 s each) is marked
``slow``: ``make test-slow`` and CI (``.ci/run``) run it, ``make test`` does not. Needs the
set-up environment (``make setup``); skipped without it.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
VENV = ROOT / ".venv"
ACTIVATE = "source .venv/bin/activate"
SHELLS = {"bash", "sh", "shell"}
MARKER = re.compile(r"^<!--\s*readme-test:\s*skip\s*\((?P<reason>.+)\)\s*-->$")
# what a fresh machine has without the project's environment
SYSTEM = {"python3", "mkdir", "cd", "source", ".", "export", "cat", "ls", "head", "tail", "echo",
          "rm", "cp", "git", "make", "test", "true", "conda", "mamba"}
LINKED = ("notebooks", "plans", "examples", "pyproject.toml", "requirements.lock", "Makefile")


def _blocks() -> list[dict]:
    """Every shell block: its text, the line it starts on, its skip reason (or None), and
    whether an activation of .venv came before it."""
    lines = README.read_text().splitlines()
    out, i, activated = [], 0, False
    while i < len(lines):
        m = re.match(r"^```(\w*)\s*$", lines[i])
        if not m:
            i += 1
            continue
        j = i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        body = "\n".join(lines[i + 1:j])
        if m.group(1) in SHELLS:
            k = i - 1
            while k >= 0 and not lines[k].strip():
                k -= 1
            mk = MARKER.match(lines[k].strip()) if k >= 0 else None
            out.append({"line": i + 1, "text": body, "skip": mk.group("reason") if mk else None,
                        "activated": activated})
            activated = activated or any(_strip(l) == ACTIVATE for l in body.splitlines())
        i = j + 1
    return out


def _strip(line: str) -> str:
    return line.split("  #")[0].split("\t#")[0].strip()


def _commands(text: str) -> list[list[str]]:
    """The simple commands of a block (continuations joined, comments dropped), as words."""
    joined = re.sub(r"\\\n\s*", " ", text)
    cmds = []
    for line in joined.splitlines():
        lex = shlex.shlex(line, posix=True, punctuation_chars=True)
        lex.whitespace_split = True
        words = list(lex)
        cmd: list[str] = []
        for w in words + [";"]:
            if w in {"&&", "||", ";", "|"}:
                if cmd:
                    cmds.append(cmd)
                cmd = []
            else:
                cmd.append(w)
    return cmds


BLOCKS = _blocks()
IDS = [f"README.md:{b['line']}" for b in BLOCKS]


def test_the_readme_has_shell_blocks_and_says_how_to_activate():
    assert len(BLOCKS) >= 5
    first_venv_use = min((b["line"] for b in BLOCKS for c in _commands(b["text"])
                          if c[0] in {"raidstudy", "papermill"}), default=None)
    activations = [b["line"] for b in BLOCKS if ACTIVATE in b["text"]]
    assert activations and first_venv_use and activations[0] <= first_venv_use, (
        "the README must show `source .venv/bin/activate` before the first block that runs raidstudy or papermill")
    assert "conda activate raidstudy" in README.read_text()


@pytest.mark.parametrize("block", BLOCKS, ids=IDS)
def test_block_is_valid_shell_and_names_things_that_exist(block):
    syntax = subprocess.run(["bash", "-n"], input=block["text"], text=True, capture_output=True)
    assert syntax.returncode == 0, f"README.md:{block['line']} is not valid shell: {syntax.stderr}"
    assert _commands(block["text"]), f"README.md:{block['line']} runs nothing"
    targets = set(re.findall(r"^([a-zA-Z_-]+):", (ROOT / "Makefile").read_text(), flags=re.M))
    venv_bin = {p.name for p in (VENV / "bin").iterdir()} if (VENV / "bin").is_dir() else None
    activated = block["activated"] or ACTIVATE in block["text"]
    for cmd in _commands(block["text"]):
        prog = cmd[0]
        if prog == "make":
            assert all(t in targets for t in cmd[1:] if not t.startswith("-") and "=" not in t), cmd
        elif prog not in SYSTEM and not prog.startswith(".venv/bin/"):
            assert activated, f"{prog!r} needs .venv activated (or .venv/bin/{prog}) first: {' '.join(cmd)}"
            if venv_bin is not None:
                assert prog in venv_bin, f"{prog!r} is not installed in .venv/bin"
        for word in cmd[1:]:
            # inputs: repository paths, and files by their extension (outputs go to results/)
            if (re.match(r"^(notebooks|plans|examples|data)/", word)
                    or re.search(r"\.(csv|ipynb|ya?ml|json)$", word) and not word.startswith("results/")):
                assert (ROOT / word).exists(), f"{word} (named in README.md:{block['line']}) does not exist"


def _sandbox(tmp_path: Path) -> Path:
    box = tmp_path / "repo"
    box.mkdir()
    for name in LINKED + (".venv",):
        if (ROOT / name).exists():
            (box / name).symlink_to(ROOT / name)
    # a copy, not a link: runs may cache checksums beside the processed tables
    shutil.copytree(ROOT / "data", box / "data", ignore=lambda d, names: [
        n for n in names if Path(d) == ROOT / "data" and n in {"raw", "interim"}])
    return box


def _runs_a_study(block: dict) -> bool:
    return any(c[0] == "papermill" or c[:2] in (["raidstudy", "run"], ["raidstudy", "batch"])
               for c in _commands(block["text"]))


@pytest.mark.parametrize("block", [
    pytest.param(b, marks=pytest.mark.slow) if _runs_a_study(b) and not b["skip"] else b for b in BLOCKS
], ids=IDS)
def test_block_runs_as_written(block, tmp_path):
    if block["skip"]:
        pytest.skip(f"README.md:{block['line']}: {block['skip']}")
    if not (VENV / "bin" / "raidstudy").exists():
        pytest.skip("no .venv with raidstudy: run `make setup`")
    box = _sandbox(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONHOME"}}
    # the PATH of a shell where .venv is not active, so a missing activation fails here
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if Path(p).resolve() != (VENV / "bin").resolve())
    env["RAIDSTUDY_ROOT"] = str(box)
    prelude = f"{ACTIVATE}\n" if block["activated"] else ""
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", prelude + block["text"]], cwd=box, env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, (
        f"README.md:{block['line']} failed ({proc.returncode}):\n{block['text']}\n"
        f"--- stdout\n{proc.stdout[-2000:]}\n--- stderr\n{proc.stderr[-3000:]}")
    for out in re.findall(r"output_dir\s+(\S+)", block["text"]):
        assert (box / out / "results.json").is_file(), f"no results.json in {out}"
