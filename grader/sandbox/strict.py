"""Equality that a learner's object cannot fake, for the ``==`` and ``!=`` of test cells.

The runner rewrites ``a == b`` and ``a != b`` in test cells (only there) into
``__grader_eq__(a, b)`` / ``__grader_ne__(a, b)``. They return what ``==``
returns (numpy arrays keep working), except when one side is a plain value
(numbers, strings, bytes, None, and lists/tuples/sets/dicts of them) and the
other is, or contains, an object whose ``__eq__`` was written in the
learner's notebook: such an object can claim to equal anything, so it
compares unequal to plain values.
"""

from __future__ import annotations

import ast
import types
from typing import Any

from .protocol import TESTS_FILENAME, trusted_prefixes

__all__ = ["strict_eq", "strict_ne", "rewrite_comparisons", "EQ_NAME", "NE_NAME"]

EQ_NAME, NE_NAME = "__grader_eq__", "__grader_ne__"
_PLAIN = (int, float, complex, bool, str, bytes, type(None))
_CONTAINERS = (list, tuple, set, frozenset)
_TRUSTED = trusted_prefixes()
_MAX_ITEMS = 2000


def _plain(value: Any, depth: int = 0) -> bool:
    kind = type(value)
    if kind in _PLAIN:
        return True
    if depth > 4:
        return False
    if kind in _CONTAINERS:
        return len(value) <= _MAX_ITEMS and all(_plain(v, depth + 1) for v in value)
    if kind is dict:
        return len(value) <= _MAX_ITEMS and all(_plain(k, depth + 1) and _plain(v, depth + 1)
                                                for k, v in value.items())
    return False


def _learner_eq(kind: type) -> bool:
    for name in ("__eq__", "__ne__"):
        method = getattr(kind, name, None)
        if isinstance(method, types.FunctionType):
            filename = method.__code__.co_filename
            if not filename.startswith(_TRUSTED) and filename != TESTS_FILENAME:
                return True
    return False


def _suspect(value: Any, depth: int = 0) -> bool:
    kind = type(value)
    if kind in _PLAIN:
        return False
    if _learner_eq(kind):
        return True
    if depth > 4:
        return False
    try:
        if kind in _CONTAINERS or isinstance(value, (list, tuple, set, frozenset)):
            return any(_suspect(v, depth + 1) for v in list(value)[:_MAX_ITEMS])
        if isinstance(value, dict):
            return any(_suspect(k, depth + 1) or _suspect(v, depth + 1) for k, v in list(value.items())[:_MAX_ITEMS])
    except Exception:  # noqa: BLE001 - a hostile container: treat it as suspect
        return True
    return False


def _faked(a: Any, b: Any) -> bool:
    return (_plain(a) and _suspect(b)) or (_plain(b) and _suspect(a))


def strict_eq(a: Any, b: Any) -> Any:
    return False if _faked(a, b) else a == b


def strict_ne(a: Any, b: Any) -> Any:
    return True if _faked(a, b) else a != b


class _Rewrite(ast.NodeTransformer):
    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        self.generic_visit(node)
        if len(node.ops) != 1 or not isinstance(node.ops[0], (ast.Eq, ast.NotEq)):
            return node
        name = EQ_NAME if isinstance(node.ops[0], ast.Eq) else NE_NAME
        call = ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=[node.left, node.comparators[0]], keywords=[])
        return ast.copy_location(call, node)


def rewrite_comparisons(tree: ast.AST) -> ast.AST:
    return ast.fix_missing_locations(_Rewrite().visit(tree))
