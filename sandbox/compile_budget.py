"""How much bytecode a script would compile to, bounded before CPython compiles it.

CPython 3.11 compiles the body of a ``finally`` once per way out of its ``try``: once for
falling off the end, once for the exception path, and once more inline before each
``return`` (and each ``break``/``continue`` leaving a loop) inside the protected part. A
``try``/``finally`` nested in another's ``finally`` body is therefore compiled that many times
over, and nesting multiplies: 12 levels of ``try: return 1 / finally:`` (1.3 KB of source)
took 7 s and 1.5 GB to compile, 13 levels three times that. Nothing else in the language
multiplies code this way (comprehensions and lambdas are code objects of their own, compiled
once; a ``with`` or an ``except ... as e`` inlines only a few instructions of clean-up per exit).

``check_compile_budget`` estimates the compiled size in AST nodes, counting each ``finally``
body as many times as the compiler will emit it, and refuses the script (a ``SyntaxError``
naming the ``try`` and its line) before compilation starts when the estimate is over
``MAX_COMPILED_NODES``. The estimate is computed in one pass over the tree, so the check
costs about as much as parsing: a refused bomb answers in milliseconds wherever it is
submitted (the API's request thread and every worker), and uses no memory to speak of.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from sandbox.errors import ScriptSyntaxError

# Counted: statements, expressions and their parts, not the context and operator markers
# (``Load``, ``Add``) that hang off them. The largest script API.md allows (64 KiB) has at
# most about one such node per character (an ordinary one: 20-30,000); 100,000 copies of
# the nodes of nested try/finally blocks compile in about 0.6 s and 80 MB, where 1,000,000
# took 4 s and 1 GB. Anything over this is duplication, not code.
MAX_COMPILED_NODES = 100_000
# What a ``with`` or a named ``except`` adds per way out (a call to ``__exit__``, or
# ``e = None; del e``): a few instructions, counted as this many nodes.
_CLEANUP_NODES = 4
_SCOPES = ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef
_LOOPS = ast.For | ast.AsyncFor | ast.While
_MARKERS = ast.expr_context | ast.operator | ast.boolop | ast.unaryop | ast.cmpop
_COMPREHENSIONS = ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp


@dataclass(slots=True)
class _Cost:
    """A subtree's estimated compiled size, and how many ways out of it the compiler emits
    (``returns`` leave the function; ``jumps`` are break/continue, which leave a loop)."""

    nodes: int = 0
    returns: int = 0
    jumps: int = 0


class _Budget:
    def __init__(self) -> None:
        # The first (outermost) try whose copies alone pass the budget: the one to name.
        self.culprit: ast.Try | ast.TryStar | None = None

    def cost(self, node: ast.AST) -> _Cost:
        # Recursion is safe: the compiler refuses trees deeper than MAX_NESTING before this.
        if isinstance(node, ast.Try | ast.TryStar) and node.finalbody:
            return self._try_finally(node)
        total = _Cost(nodes=0 if isinstance(node, _MARKERS) else 1)
        for child in ast.iter_child_nodes(node):
            part = self.cost(child)
            total.nodes += part.nodes
            total.returns += part.returns
            total.jumps += part.jumps
        if isinstance(node, _SCOPES | _COMPREHENSIONS):
            # A code object of its own: its exits end there, and it is compiled once.
            return _Cost(nodes=total.nodes)
        if isinstance(node, _LOOPS):
            total.jumps = 0  # break/continue inside end at this loop
        elif isinstance(node, ast.Return):
            total.returns += 1
        elif isinstance(node, ast.Break | ast.Continue):
            total.jumps += 1
        elif isinstance(node, ast.With | ast.AsyncWith) or (
            isinstance(node, ast.ExceptHandler) and node.name
        ):
            total.nodes += _CLEANUP_NODES * (2 + total.returns + total.jumps)
        return total

    def _try_finally(self, node: ast.Try | ast.TryStar) -> _Cost:
        protected = _Cost(nodes=1)
        for child in [*node.body, *node.handlers, *node.orelse]:
            part = self.cost(child)
            protected.nodes += part.nodes
            protected.returns += part.returns
            protected.jumps += part.jumps
        final = _Cost()
        for child in node.finalbody:
            part = self.cost(child)
            final.nodes += part.nodes
            final.returns += part.returns
            final.jumps += part.jumps
        # The normal path, the exception path, and one inline copy per exit through it.
        copies = 2 + protected.returns + protected.jumps
        total = _Cost(
            nodes=protected.nodes + copies * final.nodes,
            returns=protected.returns + copies * final.returns,
            jumps=protected.jumps + copies * final.jumps,
        )
        if copies * final.nodes > MAX_COMPILED_NODES and (
            self.culprit is None or node.lineno < self.culprit.lineno
        ):
            self.culprit = node
        return total

    def refuse(self) -> None:
        culprit = self.culprit
        if culprit is None:
            raise ScriptSyntaxError(
                f"code is too large to compile (over {MAX_COMPILED_NODES:,} operations)", 1, 1
            )
        raise ScriptSyntaxError(
            f"code would compile too large: Python compiles a finally block once for each way "
            f"out of its try (falling through, an exception, each return, break or continue), "
            f"and the try/finally blocks nested from line {culprit.lineno} multiply that past "
            f"{MAX_COMPILED_NODES:,} operations; nest fewer try/finally blocks, or move the "
            f"returns out of them",
            culprit.lineno,
            culprit.col_offset + 1,
        )


def check_compile_budget(tree: ast.Module) -> int:
    """The estimated compiled size of ``tree`` in nodes; ``ScriptSyntaxError`` if too large.

    The whole tree is costed even past the budget (the counts are plain integers, however
    large), so that the error names the outermost try of a nest, not the first to overflow.
    """
    budget = _Budget()
    nodes = budget.cost(tree).nodes
    if nodes > MAX_COMPILED_NODES:
        budget.refuse()
    return nodes
