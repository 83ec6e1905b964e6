"""Optimisers for reduced functionals: scipy in lock-step on every rank, and PETSc TAO.

* :func:`minimize` — pyadjoint's call: returns the optimised controls, raises
  :class:`OptimizationError` if the fit fails.
* :func:`scipy_minimize` / :func:`tao_minimize` — return an :class:`OptimizationResult`
  (controls, J, gradient norm, iterations, evaluation counts, reason, wall time, history), which
  writes itself as JSON and the history as CSV.

The parts:

``vector.py``
    the free controls as one global vector (scipy, checkpoint files) or as owned blocks of a
    distributed PETSc Vec (TAO); bounds per control.
``objective.py``
    J, derivative and Hessian actions per optimiser point, each computed once; failures agreed
    over ranks.
``progress.py``
    history, rank 0's log lines (logger ``"crk.optimize"``), checkpoint writes, the callback.
``restart.py``
    checkpoint files: atomic writes, reading them back to resume.
``problem.py``
    argument checks, starting point and result shared by both optimisers.
``scipy.py`` / ``tao.py``
    the two drivers; ``riesz.py``: the control space's inner product for TAO.
``result.py``
    the result record and the error.

Only the public reduced-function protocol is used (``rf(m)``, ``rf.derivative()``,
``rf.hessian(m_dot)``, ``rf.controls``). Importing this package imports neither scipy nor PETSc
nor MPI. Every function here is collective over its ``comm`` (default COMM_WORLD).
"""
from .result import Evaluations, IterationRecord, OptimizationError, OptimizationResult
from .scipy import METHODS, minimize, scipy_minimize
from .tao import tao_minimize

__all__ = ["Evaluations", "IterationRecord", "METHODS", "OptimizationError",
           "OptimizationResult", "minimize", "scipy_minimize", "tao_minimize"]
