"""The suite checks itself: every test function can fail.

A test function must contain an ``assert`` statement, a ``pytest.raises``/``pytest.warns``/
``pytest.fail``/``pytest.skip``/``pytest.approx``-free call of a checking helper
(``np.testing.assert_*``, ``pd.testing.assert_*``, ``*.assert_*``), or call a helper defined
in the same module (or in ``tests/``'s shared modules) that itself checks. A test that only
runs code proves only that the code does not raise; write the ``assert``.

Also caught: an ``assert`` whose condition is a constant or a non-empty literal (always true),
and a test whose only assertions sit under an ``if`` (they may never run).
"""
from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).parent
CHECK_CALLS = {"raises", "warns", "fail", "deprecated_call"}


def _call_name(node: ast.Call) -> str:
    f = node.func
    if isinstance(f, ast.Attribute):
        return f.attr
    if isinstance(f, ast.Name):
        return f.id
    return ""


def _checks(node: ast.AST, helpers: set[str], *, top_level_only: bool = False) -> bool:
    """Whether ``node`` contains a check (outside ``if`` bodies when ``top_level_only``)."""
    stack = list(ast.iter_child_nodes(node))
    while stack:
        n = stack.pop()
        if top_level_only and isinstance(n, ast.If):
            # an `if` checks for sure only when both of its branches check
            if n.orelse and all(_checks(ast.Module(body=b, type_ignores=[]), helpers, top_level_only=True)
                                for b in (n.body, n.orelse)):
                return True
            stack.append(n.test)
            continue
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue  # a nested function's asserts run only if it is called
        if isinstance(n, ast.Assert):
            return True
        if isinstance(n, ast.Call):
            name = _call_name(n)
            if name in CHECK_CALLS or name.startswith("assert_") or name.startswith("assert") and name != "assert" \
                    or name in helpers:
                return True
        stack.extend(ast.iter_child_nodes(n))
    return False


def _checking_helpers(tree: ast.Module, inherited: set[str]) -> set[str]:
    """Module-level functions (not tests) that check, directly or through other such helpers."""
    funcs = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
             and not n.name.startswith("test")}
    helpers = set(inherited)
    changed = True
    while changed:
        changed = False
        for name, f in funcs.items():
            if name not in helpers and _checks(f, helpers):
                helpers.add(name)
                changed = True
    return helpers


def _test_functions(tree: ast.Module):
    for n in tree.body:
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name.startswith("test"):
            yield n
        elif isinstance(n, ast.ClassDef) and n.name.startswith("Test"):
            for m in n.body:
                if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef)) and m.name.startswith("test"):
                    yield m


def _always_true(test: ast.expr) -> bool:
    if isinstance(test, ast.Constant):
        return bool(test.value)
    if isinstance(test, (ast.Tuple, ast.List, ast.Set, ast.Dict, ast.JoinedStr)):
        return bool(getattr(test, "elts", None) or getattr(test, "keys", None) or getattr(test, "values", None))
    return False


def _files():
    return sorted(p for p in TESTS.rglob("test_*.py") if ".venv" not in p.parts)


def _shared_helpers() -> set[str]:
    out: set[str] = set()
    for p in sorted(TESTS.rglob("_*.py")) + [TESTS / "conftest.py"]:
        if p.exists():
            out |= _checking_helpers(ast.parse(p.read_text()), set())
    return out


def _problems(source: str, shared: set[str]) -> list[str]:
    tree = ast.parse(source)
    helpers = _checking_helpers(tree, shared)
    bad = []
    for f in _test_functions(tree):
        if not _checks(f, helpers):
            bad.append(f"{f.name}: no assert, pytest.raises/warns or checking helper")
        elif not _checks(f, helpers, top_level_only=True):
            bad.append(f"{f.name}: every check sits under an `if` (it may never run)")
        for n in ast.walk(f):
            if isinstance(n, ast.Assert) and _always_true(n.test):
                bad.append(f"{f.name}: `assert` of a constant or non-empty literal (line {n.lineno}) is always true")
    return bad


def test_every_test_function_can_fail():
    shared = _shared_helpers()
    bad = []
    for p in _files():
        bad += [f"{p.relative_to(TESTS)}::{msg}" for msg in _problems(p.read_text(), shared)]
    assert not bad, "tests that cannot fail:\n  " + "\n  ".join(bad)


def test_the_checker_catches_the_patterns():
    src = '''
import numpy as np
import pytest

def _check(x):
    assert x

def _indirect(x):
    _check(x)

def test_runs_only():
    sum([1, 2])

def test_assert_under_if():
    x = 1
    if x > 2:
        assert x

def test_constant():
    assert (1, "always true")

def test_nested_function_only():
    def inner():
        assert False

def test_ok_assert():
    assert 1 + 1 == 2

def test_ok_raises():
    with pytest.raises(ValueError):
        int("x")

def test_ok_numpy():
    np.testing.assert_allclose(1, 1)

def test_ok_helper():
    _indirect(True)

def test_ok_both_branches(x=1):
    if x:
        assert x
    else:
        np.testing.assert_equal(x, 0)
'''
    bad = _problems(src, set())
    names = sorted({b.split(":")[0] for b in bad})
    assert names == ["test_assert_under_if", "test_constant", "test_nested_function_only", "test_runs_only"], bad
