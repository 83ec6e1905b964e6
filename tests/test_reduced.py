"""ReducedFunction / ReducedFunctional: call order, re-evaluation, errors, memory, drivers."""
import tracemalloc

import numpy as np
import pytest

import crk


def _problem():
    x = crk.array([0.3, -0.2, 0.5])
    a = crk.AdjFloat(1.2)
    J = crk.sum(np.sin(x * a) ** 2.0) + a ** 3.0
    return J, x, a


def _grad_at(m):
    """Derivative computed on a fresh tape at m (the reference)."""
    with crk.Tape():
        x, a = crk.array(m[0]), crk.AdjFloat(m[1])
        J = crk.sum(np.sin(x * a) ** 2.0) + a ** 3.0
        dx, da = crk.ReducedFunctional(J, [crk.Control(x), crk.Control(a)]).derivative()
        return dx.value, float(da)


def test_any_call_order_gives_the_same_answers():
    with crk.Tape():
        J, x, a = _problem()
        rf = crk.ReducedFunctional(J, [crk.Control(x), crk.Control(a)])
        h = [np.array([1.0, 0.5, -1.0]), 0.2]
        hess_first = rf.hessian(h)                      # before any derivative()
        d1 = rf.derivative()
        d2 = rf.derivative()                            # twice in a row
        np.testing.assert_array_equal(d1[0].value, d2[0].value)
        hess_after = rf.hessian(h)
        np.testing.assert_array_equal(hess_first[0].value, hess_after[0].value)
        m_new = [np.array([0.1, 0.2, 0.3]), 0.7]
        rf(m_new)
        dx, da = rf.derivative()
        ref = _grad_at(m_new)
        np.testing.assert_allclose(dx.value, ref[0], rtol=1e-14)
        assert float(da) == pytest.approx(ref[1], rel=1e-14)


def test_other_reduced_function_moving_the_tape_is_noticed():
    with crk.Tape():
        J, x, a = _problem()
        rf1 = crk.ReducedFunctional(J, [crk.Control(x), crk.Control(a)])
        rf2 = crk.ReducedFunctional(J, [crk.Control(x), crk.Control(a)])
        m1 = [np.array([0.1, 0.2, 0.3]), 0.7]
        rf1(m1)
        rf2([np.array([1.0, 1.0, 1.0]), 2.0])          # moves the shared tape elsewhere
        dx, da = rf1.derivative()                       # must be at m1 again
        np.testing.assert_allclose(dx.value, _grad_at(m1)[0], rtol=1e-14)


def test_taylor_test_leaves_the_tape_at_m():
    with crk.Tape():
        J, x, a = _problem()
        rf = crk.ReducedFunctional(J, [crk.Control(x), crk.Control(a)])
        m = [np.array([0.2, 0.2, 0.2]), 0.9]
        assert crk.taylor_test(rf, m, [np.ones(3), 0.1]) > 1.9
        dx, _ = rf.derivative()
        np.testing.assert_allclose(dx.value, _grad_at(m)[0], rtol=1e-14)


def test_only_relevant_blocks_are_evaluated():
    with crk.Tape() as tape:
        x, y = crk.AdjFloat(1.0), crk.AdjFloat(2.0)
        unrelated = np.exp(y) * 3.0                     # depends on y only
        J = x * x + unrelated
        rf = crk.ReducedFunctional(J, crk.Control(x))
        assert len(rf._plan.blocks) == 2 and len(tape) == 4
        assert float(rf(3.0)) == pytest.approx(9.0 + float(unrelated))


def test_errors_name_the_culprit():
    with crk.Tape():
        with pytest.raises(TypeError, match="Control.*expected a recorded value.*got float"):
            crk.Control(1.0)
        x, y = crk.AdjFloat(1.0), crk.AdjFloat(2.0)
        J = x * 2.0
        with pytest.raises(ValueError, match="control 1 does not influence any output"):
            crk.ReducedFunctional(J, [crk.Control(x), crk.Control(y)])
        rf = crk.ReducedFunctional(J, [crk.Control(x), crk.Control(y)], allow_unused=True)
        assert [float(d) for d in rf.derivative()] == [2.0, 0.0]
        with pytest.raises(ValueError, match="output 0 does not depend on any control"):
            crk.ReducedFunctional(y * 3.0, crk.Control(x))
        with pytest.raises(TypeError, match="output 0 is a float, not a recorded value"):
            crk.ReducedFunctional(float(J), crk.Control(x))
        v = crk.array([1.0, 2.0])
        rfv = crk.ReducedFunctional(crk.sum(v * v), crk.Control(v))
        with pytest.raises(ValueError, match=r"values for control 0: expected shape \(2,\).*"
                                             r"got \(3,\)"):
            rfv(np.ones(3))
        with pytest.raises(ValueError, match="must be a scalar"):
            crk.ReducedFunctional(v * v, crk.Control(v))
        with pytest.raises(ValueError, match=r"crk multiply.*shape \(2,\).*shape \(3,\)"):
            v * crk.array([1.0, 2.0, 3.0])


def test_nonfinite_functional_is_reported_when_asked():
    with crk.Tape():
        x = crk.AdjFloat(1.0)
        J = np.log(x)
        rf = crk.ReducedFunctional(J, crk.Control(x), check_finite=True)
        with np.errstate(invalid="ignore"):
            with pytest.raises(FloatingPointError, match="evaluated to nan"):
                rf(-1.0)


def test_riesz_map_is_explicit():
    with crk.Tape():
        x = crk.array([1.0, 2.0])
        rf = crk.ReducedFunctional(crk.sum(x * x), crk.Control(x))
        np.testing.assert_array_equal(rf.derivative().value, [2.0, 4.0])
        M = np.diag([2.0, 4.0])
        grad = rf.derivative(riesz_map=lambda d: np.linalg.solve(M, d.value))
        np.testing.assert_array_equal(grad, [1.0, 1.0])
        with pytest.raises(ValueError, match="riesz_map"):
            rf.derivative(options={"riesz_representation": "L2"})


def test_vector_function_actions_and_matrix():
    with crk.Tape():
        x = crk.array([0.5, 1.5])
        a = crk.AdjFloat(2.0)
        F = [x * a, crk.sum(np.exp(x))]
        rf = crk.ReducedFunction(F, [crk.Control(x), crk.Control(a)])
        J = rf.jac_matrix()
        np.testing.assert_allclose(J[0][0], np.diag([2.0, 2.0]))
        np.testing.assert_allclose(J[0][1], [0.5, 1.5])
        np.testing.assert_allclose(J[1][0], np.exp([0.5, 1.5]))
        tang = rf.jac_action([np.array([1.0, 0.0]), 0.0])
        np.testing.assert_allclose(tang[0].value, [2.0, 0.0])
        adj = rf.adj_jac_action([np.ones(2), 1.0])
        np.testing.assert_allclose(adj[0].value, 2.0 + np.exp([0.5, 1.5]))
        assert crk.check_duality(rf, [np.array([0.3, -0.1]), 0.5]) < 1e-14
        rates = crk.taylor_to_dict(rf, [x, a], [np.array([0.3, -0.1]), 0.5])
        for key in ("R1", "R1_adjoint"):
            assert min(rates[key]["Rate"]) > 1.9
        assert min(rates["R2"]["Rate"]) > 2.9


def test_seed_style_flattened_directions():
    """h given as one stacked array for several controls is split across them (CRIKit's usage)."""
    with crk.Tape():
        xs = (crk.array(np.eye(2)), crk.array(np.ones((2, 2))))
        F = crk.ReducedFunction(crk.sum(np.exp(xs[0] @ xs[1])), [crk.Control(x) for x in xs])
        h = [0.1 * crk.array(np.full((2, 2), k + 1.0) for k in range(2))]
        assert crk.taylor_test(F, xs, h) >= 1.9
        with pytest.raises(ValueError, match="argument 'h' has 3 entries"):
            crk.taylor_test(F, xs, [np.ones(3)])


def test_drivers():
    with crk.Tape():
        x = crk.AdjFloat(2.0)
        J = x ** 3.0
        assert float(crk.compute_gradient(J, crk.Control(x))) == pytest.approx(12.0)
        assert float(crk.compute_hessian(J, crk.Control(x), 1.0)) == pytest.approx(12.0)
        assert crk.compute_tlm(J, crk.Control(x), 2.0) == pytest.approx(24.0)


def test_memory_is_flat_over_optimisation_iterations():
    with crk.Tape():
        x = crk.array(np.linspace(0, 1, 20000))
        y = x
        for _ in range(20):
            y = np.sin(y) * 1.01 + x * 0.01
        rf = crk.ReducedFunctional(crk.sum(y * y), crk.Control(x))

        def iterate(k):
            m = np.linspace(0, 1, 20000) * (1.0 + 0.001 * k)
            rf(m)
            rf.derivative()
            rf.hessian(np.ones(20000))

        for k in range(5):
            iterate(k)
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        for k in range(5, 50):
            iterate(k)
            if k == 5:
                after5 = tracemalloc.get_traced_memory()[0]
        after50 = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        assert abs(after50 - after5) < 64 * 1024, (base, after5, after50)


def test_a_new_reduced_function_does_not_trust_a_moved_tape():
    with crk.Tape():
        x = crk.array([0.1, 0.2, 0.3])
        J = crk.sum(np.sin(3.0 * x))
        rf1 = crk.ReducedFunctional(J, crk.Control(x))
        rf1(np.array([1.0, 1.0, 1.0]))               # moves the tape
        rf2 = crk.ReducedFunctional(J, crk.Control(x))  # stands for the recorded point
        np.testing.assert_allclose(rf2.derivative().value, 3 * np.cos(3 * x.value),
                                   rtol=1e-14)


def test_a_failed_evaluation_leaves_no_stale_point():
    class Fragile(crk.Block):
        def __init__(self, x):
            super().__init__()
            self.add_dependency(x)

        def recompute_component(self, inputs, block_variable, idx, prepared):
            if np.any(inputs[0] > 10):
                raise ArithmeticError("solver diverged")
            return inputs[0]

        def evaluate_adj_component(self, inputs, adj_inputs, block_variable, idx, prepared):
            return adj_inputs[0]

    with crk.Tape() as tape:
        x = crk.array([0.5, 1.5])
        y = crk.array(x.value)
        block = Fragile(np.exp(x))
        block.add_output(y)
        tape.add_block(block)
        J = crk.sum(np.sin(y))
        rf = crk.ReducedFunctional(J, crk.Control(x))
        good = np.array([0.5, 1.5])
        rf(good)
        with pytest.raises(ArithmeticError, match="diverged"):
            rf(np.array([5.0, 5.0]))
        np.testing.assert_allclose(rf.derivative().value,
                                   np.cos(np.exp(good)) * np.exp(good), rtol=1e-14)


def test_other_functions_controls_stay_at_their_recorded_values():
    with crk.Tape():
        x, y = crk.AdjFloat(1.0), crk.AdjFloat(2.0)
        J = x * y * y
        rf_x = crk.ReducedFunctional(J, crk.Control(x))
        rf_y = crk.ReducedFunctional(J, crk.Control(y))
        assert float(rf_y.derivative()) == pytest.approx(4.0)
        rf_x(5.0)
        assert float(rf_y.derivative()) == pytest.approx(4.0)     # x is 1 for rf_y
        crk.Control(y).update(3.0)                                 # changed by hand
        assert float(rf_y.derivative()) == pytest.approx(4.0)     # back at its point y = 2


@pytest.mark.mpi
def test_jac_matrix_of_a_distributed_matrix_control_has_the_global_shape(comm, split):
    with crk.Tape():
        rows = np.arange(4 * 3, dtype=float).reshape(4, 3)
        X = crk.array(rows[split(4)], comm=comm, distributed=True)
        rf = crk.ReducedFunction(crk.sum(X * X), crk.Control(X))
        J = rf.jac_matrix()[0][0]
        assert J.shape == (4, 3)
        np.testing.assert_allclose(J, 2 * rows)
