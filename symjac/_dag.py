"""The one walk over expression graphs: iterative, memoised, each distinct node once.

SymPy expressions are DAGs: a 100-step recurrence `h = tanh(w*h + x[i])` is 100 levels deep, and
the determinant shared by every entry of `inv(X)` is one node with many parents. Every walk of
symjac over such a graph (sizes and budgets, differentiation, constant folding, error bounds, code
generation, SymEngine conversion) goes through `postorder`: children before parents, each distinct
node once, with an explicit stack, so that neither the depth of an expression (Python's recursion
limit) nor the written-out size of a shared DAG (exponential in its depth) costs anything.

SymPy's own recursive helpers (`free_symbols`, `is_number`, `has`) recurse over depth too; the
versions here (`free_symbols`, `height`) are walks of the same kind.
"""

from __future__ import annotations

import contextvars
import sys
import threading
import time

from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, MutableMapping
from typing import Any

from . import _deadline

__all__ = ["postorder", "evaluate", "free_symbols", "has_symbols", "height", "call_deep"]


def _args(node: Any) -> tuple:
    return node.args


def postorder(
    roots: Iterable[Hashable],
    *,
    children: Callable[[Any], Iterable[Hashable]] = _args,
    done: Any = (),
) -> Iterator[Any]:
    """Every distinct node reachable from `roots`, each once, after all its children.

    - `children(node)`: the nodes below `node` (default: SymPy's `node.args`); a walk that does not
      look inside a node returns `()` for it.
    - `done`: nodes already handled by the caller (e.g. a memo dict): neither yielded nor entered.

    Iterative: the depth of the graph is bounded by memory, not by Python's recursion limit.
    Inside a job (`symjac._deadline.job`), every `CHECK_EVERY` nodes the job's time limit is
    checked and its progress line updated (`_deadline.checkpoint`).
    """
    seen: set = set()
    count = 0
    plain = children is _args  # SymPy's args: a leaf (no args) is yielded without a stack frame
    for root in roots:
        if root in seen or root in done:
            continue
        seen.add(root)
        stack: list[tuple[Any, Iterator]] = [(root, iter(children(root)))]
        while stack:
            node, pending = stack[-1]
            for child in pending:
                if child not in seen and child not in done:
                    seen.add(child)
                    if plain and not child.args:
                        count += 1
                        if count == _deadline.CHECK_EVERY:
                            _deadline.checkpoint(count)
                            count = 0
                        yield child
                        continue
                    stack.append((child, iter(children(child))))
                    break
            else:
                stack.pop()
                count += 1
                if count == _deadline.CHECK_EVERY:  # a job's time limit and progress (symjac._deadline)
                    _deadline.checkpoint(count)
                    count = 0
                yield node


def evaluate(
    roots: Iterable[Hashable],
    step: Callable[[Any], Any],
    *,
    memo: MutableMapping | None = None,
    children: Callable[[Any], Iterable[Hashable]] = _args,
) -> MutableMapping:
    """`memo[node] = step(node)` for every node below `roots`, children first; returns `memo`.

    `step` reads its children's results from `memo` (pass the dict in to share it across calls:
    nodes already in it are not visited again).
    """
    memo = {} if memo is None else memo
    for node in postorder(roots, children=children, done=memo):
        memo[node] = step(node)
    return memo


def free_symbols(roots: Iterable[Any], *, memo: MutableMapping | None = None) -> MutableMapping:
    """`memo[node]` = the frozenset of SymPy `Symbol`s in `node`, for every node below `roots`.

    Like `expr.free_symbols`, for expressions without bound variables (symjac refuses `Integral`,
    `Sum`, `Lambda` and the like before it looks), without SymPy's recursion over depth. A node
    whose symbols all come from one child shares that child's set.
    """
    memo = {} if memo is None else memo

    def step(node):
        if getattr(node, "is_Symbol", False):
            return frozenset((node,))
        return symbols_union([memo[arg] for arg in node.args])

    return evaluate(roots, step, memo=memo)


_EMPTY: frozenset = frozenset()


def symbols_union(parts: list) -> frozenset:
    """The union of the children's symbol sets `parts`: the largest set itself (no new set) when
    it holds every other one, as it does along a chain of nodes over the same symbols."""
    largest = _EMPTY
    others = None  # the other non-empty sets
    for part in parts:
        if not part or part is largest:
            continue
        if len(part) > len(largest):
            if largest:
                others = [largest] if others is None else others + [largest]
            largest = part
        else:
            others = [part] if others is None else others + [part]
    if others is None or all(part <= largest for part in others):
        return largest
    return largest.union(*others)


def has_symbols(roots: Iterable[Any], *, memo: MutableMapping | None = None) -> MutableMapping:
    """`memo[node]` = whether `node` holds a SymPy `Symbol` (`bool(free_symbols(...)[node])`),
    for every node below `roots`, without building the sets (a plan only asks "constant or not")."""
    memo = {} if memo is None else memo
    get = memo.__getitem__

    def step(node):
        return True if getattr(node, "is_Symbol", False) else any(map(get, node.args))

    return evaluate(roots, step, memo=memo)


def holds(walked: Mapping, classes: tuple) -> dict:
    """`out[node]` = whether `node` is, or holds below it, an instance of `classes`, for every node
    of `walked`: a memo `evaluate` filled (every node below its roots, children first, as
    `has_symbols` returns it), read in that order without another walk; `{}` when no node is an
    instance (the usual case, one pass over the nodes' types)."""
    if not any(isinstance(node, classes) for node in walked):
        return {}
    out: dict = {}
    get = out.__getitem__
    for node in walked:
        out[node] = isinstance(node, classes) or any(map(get, node.args))
    return out


def height(roots: Iterable[Any], *, memo: MutableMapping | None = None) -> MutableMapping:
    """`memo[node]` = the longest path from `node` down to a leaf (0 for a leaf)."""
    memo = {} if memo is None else memo
    return evaluate(roots, lambda node: 1 + max((memo[a] for a in node.args), default=-1), memo=memo)


# --------------------------------------------------------------------------- SymPy's own recursion
# SymPy's constructors and assumption queries recurse over the depth of their arguments (`sin(a)`
# asks `a.is_number`, which asks every level below). symjac's own walks are iterative; where SymPy
# must build a deep expression (a callable unrolling a 1,000-step recurrence), it runs on a thread
# whose stack and Python recursion limit are sized from the depth budget, never from the input.

#: Python frames allowed per level of the depth budget (SymPy's deepest queries take about 3).
FRAMES_PER_LEVEL = 8
#: C stack per allowed Python frame on the deep thread (bytes).
_STACK_PER_FRAME = 2048
_MIN_STACK = 32 * 2**20
_MAX_STACK = 1024 * 2**20

_limit_lock = threading.Lock()
_limit_users = 0
_limit_saved = 0


class _Abandoned(BaseException):
    """Raised inside a `call_deep` worker whose caller stopped waiting (time limit, Ctrl-C)."""


class _Stopper:
    """Stops one `call_deep` worker whose caller stopped waiting: `_Abandoned` is raised in it at
    its next Python instruction (`PyThreadState_SetAsyncExc`), again every `_STOP_EVERY` seconds
    until the worker says it is done, since one such exception can be swallowed (raised inside a
    finaliser that the garbage collector runs on that thread, it is only printed). Pure-Python work
    (SymPy's) stops soon; a long call into C code finishes first."""

    def __init__(self):
        self._lock = threading.Lock()
        self._done = False
        self._ident: int | None = None

    def start(self, ident: int | None) -> None:
        """From the caller: keep stopping the worker `ident` on a daemon thread."""
        self._ident = ident
        if ident is not None:
            threading.Thread(target=self._run, name="symjac-deep-stopper", daemon=True).start()

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._done:
                    return
                _async_raise(self._ident, _Abandoned)
            time.sleep(_STOP_EVERY)

    def finish(self) -> None:
        """From the worker, last: no `_Abandoned` is raised in it after this returns."""
        while True:
            try:
                with self._lock:
                    self._done = True
                    _async_raise(threading.get_ident(), None)  # clear one still pending
                return
            except _Abandoned:  # raised between two instructions above: done is set, clear again
                continue


#: Seconds between two attempts to stop an abandoned `call_deep` worker.
_STOP_EVERY = 0.25


def _async_raise(ident: int, exception: type[BaseException] | None) -> None:
    import ctypes

    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(ident), ctypes.py_object(exception) if exception is not None else None)


def _release_limit() -> None:
    """One `call_deep` worker is done: the last one restores the recursion limit it found."""
    global _limit_users
    with _limit_lock:
        _limit_users -= 1
        if _limit_users == 0:
            sys.setrecursionlimit(_limit_saved)


def call_deep(fn: Callable[[], Any], *, levels: int) -> Any:
    """`fn()`, run with room for `levels` levels of SymPy's recursion: in this thread first, and if
    that runs out of recursion, again on its own thread, with a stack and a recursion limit raised
    by `FRAMES_PER_LEVEL * levels` frames (so `fn` must be safe to call twice); returns its result
    or raises its exception. The caller's context variables (NumPy's `errstate`, `decimal`) are
    copied to it. The process-wide recursion limit is raised while any such call runs and
    restored after the last one; it is never lowered below what it was."""
    # First in the calling thread, where a time limit's signal can interrupt the caller's own code
    # (a helper thread cannot be stopped from outside): only what needs the room goes to a thread.
    try:
        return fn()
    except RecursionError:
        pass
    global _limit_users, _limit_saved
    frames = FRAMES_PER_LEVEL * max(int(levels), 0)
    result: dict = {}
    context = contextvars.copy_context()
    job = _deadline.current_job()  # the caller's time limit holds in the helper thread too

    stopper = _Stopper()

    def target():
        try:
            try:
                with _deadline.adopted(job):
                    result["value"] = context.run(fn)
            except BaseException as error:  # noqa: BLE001 - handed back to the caller's thread
                result["error"] = error
        except _Abandoned:  # its caller is gone (raised while the error above was being kept)
            pass
        finally:
            stopper.finish()
            _release_limit()

    with _limit_lock:
        if _limit_users == 0:
            _limit_saved = sys.getrecursionlimit()
        _limit_users += 1
        needed = _limit_saved + frames
        if sys.getrecursionlimit() < needed:
            sys.setrecursionlimit(needed)
        size = min(max(_MIN_STACK, (_limit_saved + frames) * _STACK_PER_FRAME), _MAX_STACK)
        old_size = threading.stack_size()
        try:
            threading.stack_size(size)
            worker = threading.Thread(target=target, name="symjac-deep", daemon=True)
        finally:
            threading.stack_size(old_size)
    try:
        worker.start()
    except BaseException:
        _release_limit()
        raise
    # The worker, not this thread, gives the recursion limit back when it ends: a caller stopped by
    # its time limit (or Ctrl-C) leaves the worker running, deep in SymPy, and lowering the limit
    # under a deep thread is a fatal error of the interpreter ("Cannot recover from stack
    # overflow"). `Thread.is_alive()` cannot tell: a `join()` interrupted by a signal marks a
    # running thread as stopped (CPython bpo-45274).
    try:
        worker.join()
    except BaseException:
        stopper.start(worker.ident)
        raise
    if "error" in result:
        error = result.pop("error")
        try:
            raise error
        finally:
            del error
    return result.get("value")
