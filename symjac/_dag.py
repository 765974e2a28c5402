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

from collections.abc import Callable, Hashable, Iterable, Iterator, MutableMapping
from typing import Any

from . import _deadline

__all__ = ["postorder", "evaluate", "free_symbols", "height"]


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
    empty: frozenset = frozenset()

    def step(node):
        if getattr(node, "is_Symbol", False):
            return frozenset((node,))
        parts = [memo[arg] for arg in node.args if memo[arg]]
        if not parts:
            return empty
        largest = max(parts, key=len)
        if all(part <= largest for part in parts):
            return largest
        return frozenset().union(*parts)

    return evaluate(roots, step, memo=memo)


def height(roots: Iterable[Any], *, memo: MutableMapping | None = None) -> MutableMapping:
    """`memo[node]` = the longest path from `node` down to a leaf (0 for a leaf)."""
    memo = {} if memo is None else memo
    return evaluate(roots, lambda node: 1 + max((memo[a] for a in node.args), default=-1), memo=memo)
