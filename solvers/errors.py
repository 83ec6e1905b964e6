"""Errors raised by the solvers, the same on every rank."""


class ConvergenceError(RuntimeError):
    """A nonlinear (SNES) or linear (KSP) solve did not converge, or produced NaN.

    Raised on every rank together (the verdict is agreed over the problem's communicator).

    ``solve``: which solve failed ("forward Newton", "adjoint", "tangent-linear",
    "second-order adjoint", ...); ``reason``: PETSc's converged-reason name (e.g.
    ``"DIVERGED_LINE_SEARCH"``, ``"DIVERGED_ITS"``) or a description; ``history``: the residual
    norms of the iterations (a list of floats); ``linear_iterations``: linear iterations per
    Newton step where known.
    """

    def __init__(self, solve, reason, history=(), linear_iterations=(), detail=""):
        self.solve = solve
        self.reason = reason
        self.history = [float(r) for r in history]
        self.linear_iterations = [int(i) for i in linear_iterations]
        shown = ", ".join(f"{r:.3e}" for r in self.history[:30])
        if len(self.history) > 30:
            shown += f", ... ({len(self.history)} in all)"
        message = f"{solve} solve did not converge: {reason}"
        if self.history:
            message += f"; residual norms [{shown}]"
        if self.linear_iterations:
            message += f"; linear iterations per step {self.linear_iterations}"
        if detail:
            message += f". {detail}"
        super().__init__(message)
