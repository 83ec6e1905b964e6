"""J, its derivative and Hessian actions at optimiser points, each computed at most once.

An optimiser asks for J, the derivative and Hessian actions at points in whatever order it likes
(scipy's separate ``fun`` and ``jac``, line searches, trust regions). :class:`Objective` keeps the
last few points with what is known there, so that a point costs one forward run and, when its
derivative is asked for, one adjoint run. The tape stands at the last point run forward; a
derivative or Hessian action at an older point runs it forward again first (counted).

Failures are agreed: an exception raised by the reduced functional on any rank, or a non-finite
J or derivative (on any rank's piece), raises :class:`EvaluationFailure` on every rank, and the
point is remembered as failed. Every check rides on the agreement that closes each call, so a
point costs crk.optimize one or two small collectives beyond the reduced functional's own.
"""
import numpy as np

from ..enlist import Enlist
from ..overloaded_type import plain_value
from ..parallel.collective import collective_section, sum_over_ranks
from .result import Evaluations


def controls_listed(rf):
    """Whether ``rf``'s controls were given as a list (then values go in and come out as
    lists), rather than as one control."""
    return getattr(rf.controls, "listed", True)


class EvaluationFailure(RuntimeError):
    """J or its derivative could not be computed at a point (raised on every rank alike)."""


class _Point:
    __slots__ = ("x", "values", "J", "gradient", "failure")

    def __init__(self, x, values):
        self.x = x
        self.values = values
        self.J = None
        self.gradient = None
        self.failure = None


class Objective:
    """Counted, cached evaluations of the scalar reduced functional ``rf`` over ``comm``.

    Points are given as (``x``, ``values``): ``x`` a float array identifying the point (compared
    entry by entry), ``values`` one plain value per control of ``rf`` (this rank's piece for
    distributed controls) or a function returning them (called only when the point is new).
    With ``replicated_x`` every rank passes the same ``x`` (scipy's global vector) and lookups
    need no communication; otherwise each rank's ``x`` is its own piece and a lookup agrees over
    ``comm``. Every method is collective.
    """

    def __init__(self, rf, comm, replicated_x=True, cache_size=4):
        self.rf = rf
        self.comm = comm
        self.listed = controls_listed(rf)
        self.replicated_x = replicated_x or comm.size == 1
        self.cache_size = cache_size
        self.points = []                    # most recently used last
        self.at_tape = None                 # the point the tape stands at
        self.count = Evaluations()
        # where a failure on one rank is agreed with the others (made once: they hold no state)
        self.sections = {kind: collective_section(comm=comm, where=f"crk.optimize: {what}")
                         for kind, what in (("forward", "evaluating J"),
                                            ("adjoint", "the derivative"),
                                            ("hessian", "a Hessian action"))}

    # -- public -----------------------------------------------------------------------------
    def value(self, x, values):
        """J at the point (float). Raises EvaluationFailure."""
        point = self._point(x, values)
        if point.failure is None and point.J is None:
            self._forward(point)
        self._raise_if_failed(point)
        return point.J

    def gradient(self, x, values):
        """The derivative at the point: one plain value per control. Raises EvaluationFailure."""
        return self.value_and_gradient(x, values)[1]

    def value_and_gradient(self, x, values):
        """(J, derivative) at the point. Raises EvaluationFailure."""
        point = self._point(x, values)
        if point.failure is None and point.gradient is None:
            if self.at_tape is not point or point.J is None:
                self._forward(point)
            if point.failure is None:
                self._adjoint(point)
        self._raise_if_failed(point)
        return point.J, point.gradient

    def hessian_action(self, x, values, direction):
        """The Hessian at the point applied to ``direction`` (one plain value per control).
        Raises EvaluationFailure."""
        point = self._point(x, values)
        if point.failure is None and (self.at_tape is not point or point.J is None):
            self._forward(point)
        self._raise_if_failed(point)
        m_dot = self._as_argument(direction)
        try:
            with self.sections["hessian"]:
                self.count.hessian += 1
                result = [plain_value(h) for h in Enlist(self.rf.hessian(m_dot))]
                # not finite for a finite direction: a failure (a non-finite direction gives
                # what it gives); agreed with the other ranks on leaving the section
                if _finite(direction) and not _finite(result):
                    raise FloatingPointError("the Hessian action is not finite")
        except Exception as e:
            self.at_tape = None
            raise EvaluationFailure(f"the Hessian action raised {type(e).__name__}: {e}") from e
        return result

    def known(self, x):
        """(J, gradient) already known at ``x`` (None where not), without evaluating.
        Collective unless ``x`` is replicated."""
        point = self._find(x)
        if point is None or point.failure is not None:
            return None, None
        return point.J, point.gradient

    def move_tape_to(self, x, values):
        """Make sure the tape stands at the point (a forward run if it does not)."""
        point = self._point(x, values)
        if self.at_tape is not point or point.J is None:
            self._forward(point)
        self._raise_if_failed(point)

    # -- internals --------------------------------------------------------------------------
    def _find(self, x):
        """The cached point at ``x``, or None. Every rank keeps the same list of points (they
        are made and reordered together); with ranks holding pieces of ``x``, the point is one
        that matches on every rank (one collective)."""
        def same(point):
            return point.x.shape == x.shape and np.array_equal(point.x, x)
        if self.replicated_x:
            return next((p for p in reversed(self.points) if same(p)), None)
        misses = sum_over_ranks(np.array([0.0 if same(p) else 1.0 for p in self.points]),
                                self.comm)
        return next((p for p, miss in zip(reversed(self.points), reversed(misses))
                     if miss == 0.0), None)

    def _point(self, x, values):
        x = np.asarray(x, dtype=np.float64)
        point = self._find(x)
        if point is not None:
            if point is not self.points[-1]:
                self.points.remove(point)
                self.points.append(point)
            return point
        point = _Point(np.array(x), list(values() if callable(values) else values))
        self.points.append(point)
        self.count.points += 1
        if len(self.points) > self.cache_size:
            del self.points[0]
        return point

    def _forward(self, point):
        self.at_tape = None
        try:
            with self.sections["forward"]:
                self.count.forward += 1
                J = float(self.rf(self._as_argument(point.values)))
        except Exception as e:
            self._fail(point, f"evaluating J raised {type(e).__name__}: {e}", e)
            return
        self.at_tape = point
        if not np.isfinite(J):
            self._fail(point, f"J is {J}")
            return
        point.J = J

    def _adjoint(self, point):
        try:
            with self.sections["adjoint"]:
                self.count.adjoint += 1
                gradient = [plain_value(g) for g in Enlist(self.rf.derivative())]
                if not _finite(gradient):     # agreed with the other ranks on leaving
                    raise FloatingPointError("the derivative is not finite")
        except Exception as e:
            self.at_tape = None
            self._fail(point, f"the derivative raised {type(e).__name__}: {e}", e)
            return
        point.gradient = gradient

    def _fail(self, point, message, cause=None):
        point.failure = (message, cause)
        self.count.failed += 1

    def _raise_if_failed(self, point):
        if point.failure is not None:
            message, cause = point.failure
            raise EvaluationFailure(message) from cause

    def _as_argument(self, values):
        return list(values) if self.listed else values[0]


def _finite(values):
    return all(np.all(np.isfinite(v)) for v in values)
