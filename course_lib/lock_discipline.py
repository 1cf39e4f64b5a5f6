"""A static lock-discipline rule over a learner's class: shared state is changed atomically or under its lock.

A thread-stress test catches a missing lock only when the interpreter switches threads inside the
unlocked section, and CPython 3.11 switches only at a call or a backward jump: ``self.hits += 1`` outside
the lock lost no update in 4 threads x 300k increments. What the interpreter does not show, the code does.
This rule reads the class (``course_lib.answer_code``) and finds, in every method but ``__init__``, the
operations on shared state (an attribute of ``self`` that some method changes) that run without the lock
the class holds around that attribute elsewhere (Eraser's lockset: the locks held at every change), and
reports the three shapes that are races on any Python:

- **read-modify-write**: ``self.n += 1``, ``self.d[k] += 1``, ``self.n = self.n + 1``;
- **a loop over shared state**: ``for k in self.d``, ``sum(... for v in self.d.values())`` (another
  thread's change mid-loop raises ``RuntimeError: dictionary changed size during iteration``);
- **check-then-act**: a method that, without the lock, changes shared state and touches shared state again
  (``if key not in self.d: self.d[key] = ...``, ``self.d[k] = v; self.d.move_to_end(k)``).

A lock is whatever the class holds with ``with self.<attr>:`` or ``self.<attr>.acquire()``.

One operation on its own (``self.d[k] = v``, ``self.d.pop(k, None)``, ``len(self.d)``) is atomic and is
never reported, so lock-free designs are accepted: a class without a lock whose counters are
``itertools.count()`` objects, or that only ever does single dict operations, passes. A private helper
called only where a lock is held counts as holding it (``_remove_expired`` "the caller holds the lock").

>>> import ast
>>> from course_lib.answer_code import Definition
>>> code = '''
... class Counter:
...     def __init__(self):
...         self._lock = threading.Lock()
...         self.hits = 0
...     def hit(self):
...         self.hits += 1
...     def reset(self):
...         with self._lock:
...             self.hits = 0
... '''
>>> cls = ast.parse(code).body[0]
>>> [(f.method, f.line, f.shape) for f in unguarded_state(Definition(cls, code.splitlines(), "answer cell 'x'"))]
[('hit', 7, 'read-modify-write')]
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from .answer_code import AnswerCodeUnavailable, Definition, definition

__all__ = ["Finding", "unguarded_state", "require_locking"]

LOCK_TYPES = frozenset({"Lock", "RLock", "Condition", "Semaphore", "BoundedSemaphore"})
MUTATORS = frozenset({"pop", "popitem", "clear", "update", "setdefault", "append", "appendleft", "extend",
                      "extendleft", "insert", "remove", "discard", "add", "move_to_end", "sort", "reverse",
                      "difference_update", "intersection_update", "symmetric_difference_update", "popleft",
                      "__setitem__", "__delitem__"})
VIEWS = frozenset({"items", "values", "keys"})
CONSTRUCTION = frozenset({"__init__", "__new__", "__post_init__", "__init_subclass__", "__set_name__"})


@dataclass(frozen=True)
class Finding:
    """One unguarded operation: where, which shape, and the learner's message."""

    method: str
    line: int
    shape: str  # "read-modify-write", "loop" or "check-then-act"
    attr: str
    message: str


@dataclass
class _Access:
    attr: str
    node: ast.Attribute
    kind: str  # "read", "write", "rmw", "loop"
    held: frozenset[str]
    scope: str


@dataclass
class _Walk:
    self_name: str
    locks: frozenset[str]
    methods: frozenset[str]
    parents: dict[ast.AST, ast.AST]
    accesses: list[_Access] = field(default_factory=list)
    calls: list[tuple[str, frozenset[str], str]] = field(default_factory=list)  # (method, held, caller scope)


def _is_self_attr(node: ast.AST, self_name: str) -> bool:
    return isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == self_name


def _callee_name(call: ast.AST) -> str:
    func = call.func if isinstance(call, ast.Call) else None
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _kind(node: ast.Attribute, walk: _Walk) -> str:
    parent = walk.parents.get(node)
    if isinstance(node.ctx, (ast.Store, ast.Del)):
        if isinstance(parent, ast.AugAssign):
            return "rmw"
        if isinstance(parent, (ast.Assign, ast.AnnAssign)) and parent.value is not None and any(
                _is_self_attr(n, walk.self_name) and n.attr == node.attr and isinstance(n.ctx, ast.Load)
                for n in ast.walk(parent.value)):
            return "rmw"
        return "write"
    if isinstance(parent, ast.Subscript) and parent.value is node:
        if isinstance(parent.ctx, (ast.Store, ast.Del)):
            return "rmw" if isinstance(walk.parents.get(parent), ast.AugAssign) else "write"
        return "read"
    if isinstance(parent, ast.Attribute) and parent.value is node:
        call = walk.parents.get(parent)
        if isinstance(call, ast.Call) and call.func is parent:
            if parent.attr in MUTATORS:
                return "write"
            if parent.attr in VIEWS and _iterated(call, walk):
                return "loop"
        return "read"
    return "loop" if _iterated(node, walk) else "read"


def _iterated(node: ast.AST, walk: _Walk) -> bool:
    parent = walk.parents.get(node)
    return isinstance(parent, (ast.For, ast.AsyncFor, ast.comprehension)) and parent.iter is node


class _Visitor(ast.NodeVisitor):
    def __init__(self, walk: _Walk, held: frozenset[str], scope: str) -> None:
        self.walk, self.held, self.scope = walk, held, scope

    def _with(self, node: ast.With | ast.AsyncWith) -> None:
        taken = set()
        for item in node.items:
            self.visit(item.context_expr)
            expr = item.context_expr
            if _is_self_attr(expr, self.walk.self_name):  # a context manager kept on self is the class's lock
                taken.add(expr.attr)
        inner = _Visitor(self.walk, self.held | taken, self.scope)
        for statement in node.body:
            inner.visit(statement)

    visit_With = visit_AsyncWith = _with

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        # A function defined in a method runs later (a thread's target, a callback): no lock is held then.
        nested = _Visitor(self.walk, frozenset(), f"{self.scope}() > {node.name}")
        for statement in node.body:
            nested.visit(statement)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        return

    def visit_Call(self, node: ast.Call) -> None:
        if _is_self_attr(node.func, self.walk.self_name) and node.func.attr in self.walk.methods:
            self.walk.calls.append((node.func.attr, self.held, self.scope))
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if _is_self_attr(node, self.walk.self_name):
            attr = node.attr
            call = self.walk.parents.get(node)
            if attr in self.walk.methods and not (isinstance(call, ast.Call) and call.func is node):
                self.walk.calls.append((attr, frozenset(), self.scope))  # passed on (a thread's target): runs later
            if attr not in self.walk.locks and attr not in self.walk.methods:
                self.walk.accesses.append(_Access(attr, node, _kind(node, self.walk), self.held, self.scope))
        self.generic_visit(node)


def _self_name(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    if any(isinstance(d, ast.Name) and d.id in ("staticmethod", "classmethod") for d in fn.decorator_list):
        return None
    args = fn.args.posonlyargs + fn.args.args
    return args[0].arg if args else None


def _locks(classes: list[ast.ClassDef]) -> frozenset[str]:
    """Attributes that hold a lock: made with threading.Lock() & co., held in a ``with``, or acquire()d."""
    found = set()
    for cls in classes:
        for node in ast.walk(cls):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) \
                    and _callee_name(node.value) in LOCK_TYPES:
                found.update(t.attr for t in node.targets if isinstance(t, ast.Attribute))
            elif isinstance(node, (ast.With, ast.AsyncWith)):
                found.update(i.context_expr.attr for i in node.items if isinstance(i.context_expr, ast.Attribute)
                             and isinstance(i.context_expr.value, ast.Name))
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "acquire" \
                    and isinstance(node.func.value, ast.Attribute):
                found.add(node.func.value.attr)
    return frozenset(found)


def _walk(cls: ast.ClassDef, locks: frozenset[str], methods: frozenset[str],
          entry: dict[str, frozenset[str]]) -> list[_Walk]:
    walks = []
    for fn in cls.body:
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) or fn.name in CONSTRUCTION:
            continue
        self_name = _self_name(fn)
        if self_name is None:
            continue
        parents = {child: parent for parent in ast.walk(fn) for child in ast.iter_child_nodes(parent)}
        walk = _Walk(self_name, locks, methods, parents)
        acquired = frozenset(n.func.value.attr for n in ast.walk(fn) if isinstance(n, ast.Call)
                             and isinstance(n.func, ast.Attribute) and n.func.attr == "acquire"
                             and _is_self_attr(n.func.value, self_name))  # lock.acquire() ... finally: release()
        visitor = _Visitor(walk, entry.get(fn.name, frozenset()) | acquired, fn.name)
        for statement in fn.body:
            visitor.visit(statement)
        walks.append(walk)
    return walks


def _entry_locks(cls: ast.ClassDef, locks: frozenset[str], methods: frozenset[str]) -> dict[str, frozenset[str]]:
    """The locks held on entry of each private helper: those held at every one of its calls (a fixpoint)."""
    private = {fn.name for fn in cls.body if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
               and fn.name.startswith("_") and not fn.name.endswith("__")}
    entry = {name: locks for name in private}
    for _ in range(len(private) + 1):
        sites: dict[str, list[frozenset[str]]] = {}
        for walk in _walk(cls, locks, methods, entry):
            for callee, held, _scope in walk.calls:
                sites.setdefault(callee, []).append(held)
        new = {name: frozenset.intersection(*sites[name]) if sites.get(name) else locks for name in private}
        if new == entry:
            break
        entry = new
    return entry


def _statement(node: ast.AST, walk: _Walk) -> ast.AST:
    while not isinstance(node, ast.stmt) and node in walk.parents:
        node = walk.parents[node]
    return node


def unguarded_state(found: Definition) -> list[Finding]:
    """Every method's first unguarded read-modify-write, loop or check-then-act on shared state (see above)."""
    cls = found.node
    family = [cls, *[c for c in found.others if c.name in {getattr(b, "id", None) for b in cls.bases}]]
    locks = _locks(family)
    methods = frozenset(fn.name for c in family for fn in c.body
                        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)))
    walks = _walk(cls, locks, methods, _entry_locks(cls, locks, methods))
    accesses = [(a, w) for w in walks for a in w.accesses]
    shared = {a.attr for a, _ in accesses if a.kind in ("write", "rmw")}
    guards: dict[str, frozenset[str]] = {}
    for a, _ in accesses:
        if a.kind in ("write", "rmw") and a.held:
            guards[a.attr] = guards[a.attr] & a.held if a.attr in guards else a.held
    loose: dict[str, list[tuple[_Access, _Walk]]] = {}
    for a, w in accesses:
        if a.attr in shared and not (a.held & guards.get(a.attr, frozenset())):
            loose.setdefault(a.scope, []).append((a, w))
    findings = []
    for scope, items in loose.items():
        shape, (a, w), other = _shape(items)
        if shape:
            findings.append(_finding(found, scope, shape, a, w, other, guards.get(a.attr, frozenset()), locks))
    return sorted(findings, key=lambda f: f.line)


def _shape(items: list[tuple[_Access, _Walk]]) -> tuple[str, tuple[_Access, _Walk], Any]:
    for wanted, shape in (("rmw", "read-modify-write"), ("loop", "loop")):
        for item in items:
            if item[0].kind == wanted:
                return shape, item, None
    writes = [item for item in items if item[0].kind == "write"]
    if writes and len(items) >= 2:
        other = next(item for item in items if item is not writes[0])
        return "check-then-act", writes[0], other
    return "", items[0], None


def _text(found: Definition, node: ast.AST) -> str:
    line = found.lines[node.lineno - 1].strip() if 0 < node.lineno <= len(found.lines) else ""
    return line[:100]


def _finding(found: Definition, scope: str, shape: str, a: _Access, w: _Walk, other: Any,
             guard: frozenset[str], locks: frozenset[str]) -> Finding:
    stmt = _statement(a.node, w)
    text, attr = _text(found, stmt), f"self.{a.attr}"
    if shape == "read-modify-write":
        what = (f"`{text}` reads {attr}, changes the value and writes it back in separate steps: two threads "
                f"can both read the same old value, and one update is lost.")
    elif shape == "loop":
        what = (f"`{text}` loops over {attr} while another thread may add or remove entries (RuntimeError: "
                f"dictionary changed size during iteration, or a result that mixes two states).")
    else:
        seen = _text(found, _statement(other[0].node, other[1]))
        what = (f"`{text}` changes {attr}, and the same method also uses shared state in `{seen}` "
                f"(line {other[0].node.lineno}): another thread can run between the two steps (check-then-act, "
                f"or a change made in two steps), so they do not happen as one.")
    lock = sorted(guard)[0] if guard else (sorted(locks)[0] if locks else "")
    if not lock:
        fix = "The class has no lock: create one in __init__ (self._lock = threading.Lock()) and hold it here"
    elif guard:
        fix = (f"It runs without holding self.{lock}, the lock the other methods hold when they change {attr}. "
               f"Put it inside `with self.{lock}:`")
    else:
        fix = f"It runs without holding a lock. Put it inside `with self.{lock}:`"
    return Finding(scope, a.node.lineno, shape, a.attr,
                   f"{found.node.name}.{scope}(), {found.where}, line {a.node.lineno}: {what} {fix}"
                   + (" (a counter can also be an itertools.count(), which needs no lock)." if shape ==
                      "read-modify-write" else "."))


def require_locking(check: Any, class_name: str) -> None:
    """Fail ``check`` (a ``course_lib.Check``) with every unguarded operation of the learner's ``class_name``."""
    try:
        found = definition(class_name, check.exercise_id)
    except AnswerCodeUnavailable as exc:
        check.fail(f"Could not check the locking of {class_name}: {exc}.")
        return
    findings = unguarded_state(found)
    if findings:
        check.fail("Not thread-safe: " + " Also: ".join(f.message for f in findings[:3])
                   + (f" ({len(findings) - 3} more places like these.)" if len(findings) > 3 else ""))
