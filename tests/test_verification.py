"""The derivative checks need only the public protocol of a reduced function: a user's own class,
not a crk.ReducedFunction, is checked (and a wrong derivative of it caught), serially and with a
distributed control."""
import numpy as np
import pytest

import crk
from crk.parallel import sum_over_ranks


class Quadratic:
    """J(m) = ½ Σ d m² + Σ b sin(m) over all ranks' pieces, written with numpy alone.

    ``error`` scales the derivative (1.0: right) to check that the checks notice."""

    def __init__(self, m0, d, b, comm=None, error=1.0):
        distributed = comm is not None
        self.controls = [crk.Control(crk.array(m0, comm=comm, distributed=distributed))]
        self.comm, self.d, self.b, self.error = comm, d, b, error
        self.m = np.array(m0)

    def _sum(self, local):
        return float(sum_over_ranks(float(local), self.comm)) if self.comm else float(local)

    def __call__(self, m):
        self.m = np.asarray(m[0] if isinstance(m, list) else m, dtype=float)
        return self._sum(np.sum(0.5 * self.d * self.m ** 2 + self.b * np.sin(self.m)))

    def derivative(self):
        return [self.error * (self.d * self.m + self.b * np.cos(self.m))]

    def hessian(self, m_dot):
        h = np.asarray(m_dot[0] if isinstance(m_dot, list) else m_dot)
        return [(self.d - self.b * np.sin(self.m)) * h]


class Linear:
    """F(m) = A m (a vector function): its tangent, adjoint and a zero second order."""

    def __init__(self, A, m0):
        self.A = A
        self.controls = [crk.Control(crk.array(m0))]

    def __call__(self, m):
        return self.A @ np.asarray(m[0] if isinstance(m, list) else m)

    def jac_action(self, m_dot):
        return self.A @ np.asarray(m_dot[0] if isinstance(m_dot, list) else m_dot)

    def adj_jac_action(self, w):
        return [self.A.T @ np.asarray(w)]

    def hess_action(self, m_dot, w):
        return [np.zeros(self.A.shape[1])]


@pytest.mark.mpi
def test_a_users_own_reduced_functional_is_checked(comm, split):
    rng = np.random.default_rng(3)
    n = 7
    piece = split(n)
    m0, d, b, h = (rng.standard_normal(n)[piece] for _ in range(4))
    rf = Quadratic(m0, d, b, comm=comm)
    rates = crk.taylor_to_dict(rf, [m0], [h])
    assert min(rates["R1"]["Rate"]) > 1.9 and min(rates["R2"]["Rate"]) > 2.9
    assert crk.taylor_test(rf, m0, h) > 1.9
    np.testing.assert_array_equal(rf.m, m0)              # left at m
    wrong = Quadratic(m0, d, b, comm=comm, error=1.1)    # a 10% error in the derivative
    assert crk.taylor_test(wrong, m0, h) < 1.2
    with pytest.raises(ValueError, match=r"argument 'h' has \d+ entries in all, but the "
                                         r"controls have"):
        crk.taylor_test(rf, m0, [np.ones(len(m0) + 1)])


def test_a_users_own_vector_function_is_checked():
    rng = np.random.default_rng(4)
    A = rng.standard_normal((3, 5))
    rf = Linear(A, np.zeros(5))
    h = rng.standard_normal(5)
    assert crk.check_duality(rf, h) < 1e-14
    rates = crk.taylor_to_dict(rf, np.ones(5), h)
    # Linear: the first-order remainders vanish to round-off (rates are meaningless there).
    assert max(rates["R1"]["Residual"]) < 1e-12 and max(rates["R1_adjoint"]["Residual"]) < 1e-12
    wrong = Linear(A, np.zeros(5))
    wrong.adj_jac_action = lambda w: [1.1 * A.T @ np.asarray(w)]
    assert crk.check_duality(wrong, h) > 0.05
