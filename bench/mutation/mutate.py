"""Mutants of a reference answer: small AST changes inside its ``### BEGIN/END SOLUTION`` regions.

Only code a learner writes is mutated (the solution regions), never the signatures and docstrings around
them. Each mutant is the whole answer cell, unparsed (``ast.unparse``), with one change: a ``with`` block
replaced by its body (a lock removed), a ``try`` replaced by its body, a statement dropped, a comparison
flipped or moved across its boundary, ``and``/``or`` swapped, a ``not`` removed, an arithmetic operator
swapped, a constant changed, a keyword argument dropped or two positional arguments swapped.

>>> cell = "def f(x):\\n    ### BEGIN SOLUTION\\n    return x < 1\\n    ### END SOLUTION\\n"
>>> [(m.operator, m.code.splitlines()[-1].strip()) for m in mutants_of("demo", cell)]  # doctest: +NORMALIZE_WHITESPACE
[('drop-statement', 'pass'), ('flip-compare', 'return x >= 1'), ('compare-boundary', 'return x <= 1'),
 ('swap-constant', 'return x < 0')]
"""

from __future__ import annotations

import ast
import copy
import hashlib
import re
from dataclasses import dataclass
from typing import Callable, Iterator

__all__ = ["Mutant", "solution_regions", "mutants_of", "reference_of", "OPERATORS"]

_MARKER = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*$")

_FLIP = {ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Lt: ast.GtE, ast.GtE: ast.Lt, ast.Gt: ast.LtE,
         ast.LtE: ast.Gt, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}
_BOUNDARY = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt}
_ARITHMETIC = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Div,
               ast.Mod: ast.FloorDiv}
_BOOL = {ast.And: ast.Or, ast.Or: ast.And}
_KEEP = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Pass, ast.Global, ast.Nonlocal)


@dataclass(frozen=True)
class Mutant:
    """One changed answer cell: ``code`` replaces the reference answer of ``exercise``."""

    exercise: str
    operator: str
    line: int  # in the answer without its markers
    description: str
    code: str

    @property
    def key(self) -> str:
        """A stable id: the hash of the exercise and the mutated code."""
        return hashlib.sha256(f"{self.exercise}\0{self.code}".encode()).hexdigest()[:12]


def solution_regions(cell_source: str) -> tuple[str, set[int]]:
    """The answer without its solution markers (as the grader's ``solution_answers`` gives it) and the
    numbers of its lines (1-based) that lie inside a solution region."""
    lines, inside, region = [], set(), False
    for raw in cell_source.splitlines():
        match = _MARKER.match(raw)
        if match:
            region = match.group(1) == "BEGIN"
            continue
        lines.append(raw)
        if region:
            inside.add(len(lines))
    return "\n".join(lines) + "\n", inside


def _is_docstring(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)


def _changed_constant(value: int | float | bool) -> int | float | bool:
    """True <-> False, 0 <-> 1, another int n -> n + 1, a float x -> 2x (0.0 -> 1.0)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return 1 - value if value in (0, 1) else value + 1
    return value * 2 if value else 1.0


def _statement_changes(stmt: ast.stmt) -> Iterator[tuple[str, str, Callable[[ast.stmt], list[ast.stmt]]]]:
    """(operator, description, change) for a statement; ``change`` returns what replaces it."""
    if isinstance(stmt, ast.With):
        yield "remove-with", f"`with {ast.unparse(stmt.items[0].context_expr)}:` replaced by its body", \
            lambda s: list(s.body)
    if isinstance(stmt, ast.Try):
        yield "remove-try", "`try` replaced by its body (no handler)", \
            lambda s: list(s.body) + list(s.orelse) + list(s.finalbody)
    if not isinstance(stmt, _KEEP) and not _is_docstring(stmt):
        yield "drop-statement", f"`{ast.unparse(stmt).splitlines()[0][:60]}` removed", lambda s: [ast.Pass()]


def _expression_changes(node: ast.AST) -> Iterator[tuple[str, str, Callable[[ast.AST], None]]]:
    """(operator, description, change in place) for an expression node."""
    if isinstance(node, ast.Compare):
        op = type(node.ops[0])
        if op in _FLIP:
            yield "flip-compare", f"`{ast.unparse(node)}`: {op.__name__} -> {_FLIP[op].__name__}", \
                lambda n, new=_FLIP[op]: n.ops.__setitem__(0, new())
        if op in _BOUNDARY:
            yield "compare-boundary", f"`{ast.unparse(node)}`: {op.__name__} -> {_BOUNDARY[op].__name__}", \
                lambda n, new=_BOUNDARY[op]: n.ops.__setitem__(0, new())
    elif isinstance(node, ast.BoolOp) and type(node.op) in _BOOL:
        yield "swap-boolean", f"`{ast.unparse(node)[:60]}`: and <-> or", \
            lambda n: setattr(n, "op", _BOOL[type(n.op)]())
    elif isinstance(node, (ast.BinOp, ast.AugAssign)) and type(node.op) in _ARITHMETIC:
        text = ast.unparse(node).splitlines()[0][:60]
        yield "swap-arithmetic", f"`{text}`: {type(node.op).__name__} -> {_ARITHMETIC[type(node.op)].__name__}", \
            lambda n: setattr(n, "op", _ARITHMETIC[type(n.op)]())
    elif isinstance(node, ast.Constant) and type(node.value) in (int, float, bool):
        new = _changed_constant(node.value)
        yield "swap-constant", f"constant {node.value!r} -> {new!r}", lambda n, new=new: setattr(n, "value", new)
    elif isinstance(node, ast.Call):
        for i, kw in enumerate(node.keywords):
            if kw.arg is not None:
                yield "change-argument", f"`{ast.unparse(node)[:60]}`: keyword {kw.arg}= dropped", \
                    lambda n, i=i: n.keywords.pop(i)
        if len(node.args) >= 2 and not any(isinstance(a, ast.Starred) for a in node.args[:2]):
            yield "change-argument", f"`{ast.unparse(node)[:60]}`: first two arguments swapped", \
                lambda n: n.args.__setitem__(slice(0, 2), [n.args[1], n.args[0]])


def _candidates(tree: ast.AST, inside: set[int]) -> Iterator[tuple[int, str, str, str, int, int]]:
    """(node index in ast.walk order, kind, operator, description, variant, line) of every change inside a
    region."""
    for index, node in enumerate(ast.walk(tree)):
        for field, value in ast.iter_fields(node):
            if isinstance(value, list) and value and all(isinstance(s, ast.stmt) for s in value):
                for pos, stmt in enumerate(value):
                    if stmt.lineno in inside:
                        for variant, (op, text, _) in enumerate(_statement_changes(stmt)):
                            yield index, f"stmt:{field}:{pos}", op, text, variant, stmt.lineno
            else:
                for pos, item in enumerate(value if isinstance(value, list) else [value]):
                    if isinstance(item, ast.UnaryOp) and isinstance(item.op, ast.Not) and item.lineno in inside:
                        where = f"not:{field}:{pos}" if isinstance(value, list) else f"not:{field}"
                        yield index, where, "remove-not", f"`{ast.unparse(item)[:60]}`: `not` removed", 0, \
                            item.lineno
        if getattr(node, "lineno", None) in inside:
            for variant, (op, text, _) in enumerate(_expression_changes(node)):
                yield index, "expr", op, text, variant, node.lineno


def _apply(tree: ast.AST, index: int, kind: str, variant: int) -> ast.AST:
    tree = copy.deepcopy(tree)
    node = next(n for i, n in enumerate(ast.walk(tree)) if i == index)
    if kind == "expr":
        _, _, change = list(_expression_changes(node))[variant]
        change(node)
    elif kind.startswith("not:"):
        _, field, *pos = kind.split(":")
        if pos:
            items = getattr(node, field)
            items[int(pos[0])] = items[int(pos[0])].operand
        else:
            setattr(node, field, getattr(node, field).operand)
    else:
        _, field, pos = kind.split(":")
        body = getattr(node, field)
        stmt = body[int(pos)]
        _, _, change = list(_statement_changes(stmt))[variant]
        body[int(pos): int(pos) + 1] = change(stmt) or [ast.Pass()]
    return ast.fix_missing_locations(tree)


def reference_of(exercise: str, cell_source: str) -> Mutant:
    """The answer without any change, written the way its mutants are (markers removed, unparsed)."""
    code, _ = solution_regions(cell_source)
    return Mutant(exercise, "none", 0, "the reference, unparsed", ast.unparse(ast.parse(code)) + "\n")


def mutants_of(exercise: str, cell_source: str) -> list[Mutant]:
    """Every distinct mutant of an answer cell (its source with the solution markers), in source order."""
    code, inside = solution_regions(cell_source)
    tree = ast.parse(code)
    original = ast.unparse(tree)
    seen, found = {original}, []
    for index, kind, op, text, variant, line in _candidates(tree, inside):
        mutated = ast.unparse(_apply(tree, index, kind, variant))
        if mutated in seen:
            continue
        seen.add(mutated)
        found.append(Mutant(exercise, op, line, text, mutated + "\n"))
    return sorted(found, key=lambda m: m.line)


OPERATORS = ("remove-with", "remove-try", "drop-statement", "flip-compare", "compare-boundary", "swap-boolean",
             "remove-not", "swap-arithmetic", "swap-constant", "change-argument")
