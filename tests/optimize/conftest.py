"""Reduced functionals the optimiser tests fit (numpy only), as fixtures.

Each fixture returns a builder; call it inside ``with crk.Tape():``. Builders taking ``comm``
split distributed data unevenly over it (rank r gets a share ∝ r + 1), so the same builder with
``MPI.COMM_SELF`` gives the serial reference on every rank.
"""
import numpy as np
import pytest

import crk


def uneven_split(n, comm):
    """This rank's slice of range(n), shares ∝ rank + 1."""
    weights = np.arange(1, comm.size + 1, dtype=float)
    bounds = np.concatenate([[0], np.round(np.cumsum(weights) / weights.sum() * n)]).astype(int)
    return slice(int(bounds[comm.rank]), int(bounds[comm.rank + 1]))


@pytest.fixture
def rosenbrock():
    """Rosenbrock in four variables: a replicated array x (3,) and an AdjFloat a, the minimum
    at all ones. Returns (rf, [x, a])."""
    def build(x0=(0.0, 0.0, 0.0), a0=0.0):
        x, a = crk.array(np.array(x0, dtype=float)), crk.AdjFloat(a0)
        J = (crk.sum(100.0 * (x[1:] - x[:-1] ** 2.0) ** 2.0 + (1.0 - x[:-1]) ** 2.0)
             + 100.0 * (a - x[2] ** 2.0) ** 2.0 + (1.0 - x[2]) ** 2.0)
        return crk.ReducedFunctional(J, [crk.Control(x), crk.Control(a)])
    return build


LSQ_SIZE = 37


@pytest.fixture
def least_squares():
    """A nonlinear least-squares fit of a distributed field u (37 entries, uneven split) and a
    replicated scale theta: J = ½ Σ (θ u + u³/10 − d)² + ½ (θ − 1.5)² + 10⁻³ Σ u².
    ``build(comm)`` returns the ReducedFunctional with controls [u, theta]."""
    data = np.sin(np.linspace(0.0, 3.0, LSQ_SIZE))

    def build(comm, u0=0.0, theta0=0.5, rf_class=crk.ReducedFunctional):
        mine = uneven_split(LSQ_SIZE, comm)
        u = crk.array(np.full(LSQ_SIZE, u0)[mine], comm=comm, distributed=True)
        theta = crk.AdjFloat(theta0)
        J = (0.5 * crk.sum((theta * u + 0.1 * u ** 3.0 - data[mine]) ** 2.0)
             + 0.5 * (theta - 1.5) ** 2.0 + 1e-3 * crk.sum(u ** 2.0))
        return rf_class(J, [crk.Control(u), crk.Control(theta)])
    return build


#: the interior minimum of Σ x⁴ − x, per entry
QUARTIC_MINIMUM = 0.25 ** (1.0 / 3.0)
QUARTIC_LIMIT = 0.66


def _guard(limit, comm):
    """Identity that raises (on this rank only) when an entry of its piece exceeds ``limit``:
    a solver failing on the ranks that own the bad region."""
    def fun(v):
        if np.any(np.asarray(v) > limit):
            raise RuntimeError(f"solve diverged on rank {comm.rank}")
        return np.array(v, dtype=float)
    guard = crk.Primitive("guard", fun)
    crk.defvjp(guard, lambda g, ans, v: g)
    crk.defjvp(guard, lambda d, ans, v: d)
    return guard


@pytest.fixture
def quartic():
    """J = Σ x⁴ − x over a distributed x (minimum at 4^(-1/3) ≈ 0.63 per entry) that cannot be
    computed where an entry exceeds 0.66: ``failure="nan"`` makes J NaN there,
    ``failure="raise"`` raises on the ranks owning such an entry. ``build(comm, failure, n)``;
    ``build.minimum`` and ``build.limit`` are the minimiser's entries and the bad region's edge."""
    def build(comm, failure, n=5):
        mine = uneven_split(n, comm)
        x = crk.array(np.linspace(0.1, 0.3, n)[mine], comm=comm, distributed=True)
        if failure == "nan":
            J = crk.sum(x ** 4.0 - x) + 0.0 * crk.sum(crk.sqrt(QUARTIC_LIMIT - x))
        else:
            y = _guard(QUARTIC_LIMIT, comm)(x)
            J = crk.sum(y ** 4.0 - y)
        return crk.ReducedFunctional(J, crk.Control(x))
    build.minimum, build.limit = QUARTIC_MINIMUM, QUARTIC_LIMIT
    return build


@pytest.fixture
def counting_rf():
    """A ReducedFunctional class recording every forward (with its point), adjoint and Hessian
    call in ``.calls`` (independent of crk.optimize's own counts)."""
    from crk.overloaded_type import plain_value

    class CountingRF(crk.ReducedFunctional):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.calls = []

        def __call__(self, values):
            key = b"".join(np.ascontiguousarray(plain_value(v), dtype=float).tobytes()
                           for v in values)
            self.calls.append(("forward", key))
            return super().__call__(values)

        def derivative(self, *args, **kwargs):
            self.calls.append(("adjoint", None))
            return super().derivative(*args, **kwargs)

        def hessian(self, m_dot, options=None):
            self.calls.append(("hessian", None))
            return super().hessian(m_dot, options)

        def assert_reruns_only_for_hessians(self):
            """A point is run forward again only to apply the Hessian there (after the
            optimiser tried another point), or at the end to leave the tape at the answer."""
            seen = set()
            for i, (kind, key) in enumerate(self.calls):
                if kind == "forward" and key in seen and i + 1 < len(self.calls):
                    assert self.calls[i + 1][0] in ("hessian", "adjoint"), i
                seen.add(key)
    return CountingRF


@pytest.fixture
def gather_field(comm):
    """``gather_field(value)``: a distributed crk value's global array, on every rank."""
    return lambda value: np.concatenate(comm.allgather(np.asarray(value.value)))
