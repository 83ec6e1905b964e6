"""TensorFlow point maps (crk.cr.tensorflow): recording and Taylor remainders, batched per-point
Jacobians in both modes, shape errors and empty pieces; a replicated parameter on distributed
points under mpirun.

Run serially and with ``timeout 600 mpirun -n 2|3 python -m pytest --with-mpi``.
"""
import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")    # quiet TensorFlow's C++ logging (tests only)
tf = pytest.importorskip("tensorflow")

import crk  # noqa: E402
from crk.cr.tensorflow import TFPointMap, point_map  # noqa: E402
from taylor_checks import R1_RATE, assert_taylor, directions, plain  # noqa: E402


def p_laplacian(u, g, p):
    """CRIKit's p-Laplacian flux example, written in TensorFlow, scaled by (1 + u^2)."""
    mu = (tf.reduce_sum(g * g, axis=1) + 1.e-12) ** ((p - 2.) / 2.)
    return ((1. + u ** 2) * mu)[:, None] * g


def energy_and_flux(g, c):
    """Two outputs of g (n, 2) and a parameter c (2,): (n,) and (n, 2)."""
    s = 1. + tf.reduce_sum(g * g, axis=1)
    return tf.sqrt(s) + tf.linalg.matvec(g, c), (s ** (c[0] / 2.))[:, None] * tf.sin(g)


FLUX = point_map(((-1,), (-1, 2), ()), (-1, 2))(p_laplacian)
TWO = TFPointMap(energy_and_flux, ((-1, 2), (2,)), ((-1,), (-1, 2)))


def sample_args(pm, n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n,) + s) if pw else
            (3.0 if s == () else 1.0 + 0.5 * rng.random(s))
            for pw, s in zip(pm.pointwise, pm.in_point_shapes)]


def functional(outs):
    outs = outs if isinstance(outs, tuple) else (outs,)
    return sum(crk.sum(o ** 2) for o in outs)


@pytest.mark.parametrize("pm", [FLUX, TWO], ids=lambda pm: pm.name)
def test_point_map_taylor(pm):
    args = sample_args(pm, 6)
    with crk.Tape():
        values = [crk.array(a) if np.ndim(a) else crk.AdjFloat(a) for a in args]
        rf = crk.ReducedFunctional(functional(pm(*values)), [crk.Control(v) for v in values])
        assert_taylor(crk.taylor_to_dict(rf, values, directions(values, 8, scale=0.3)))


@pytest.mark.parametrize("mode", [None, "forward", "reverse"])
@pytest.mark.parametrize("pm", [FLUX, TWO], ids=lambda pm: pm.name)
def test_point_map_jacobians_taylor(pm, mode):
    """Per-point linearisation F(x + εh) ≈ F(x) + ε J h with the batched Jacobians."""
    n = 5
    args = sample_args(pm, n)
    jacs = pm.jacobians(*args, mode=mode)
    h = directions(args, 9)
    Jh = []
    for o, row in enumerate(jacs):
        total = 0.0
        for J, a, d in zip(row, range(pm.n_inputs), h):
            assert J.shape == (n,) + pm.out_point_shapes[o] + pm.in_point_shapes[a]
            size_in = int(np.prod(pm.in_point_shapes[a]))
            d_flat = np.reshape(d, (n, size_in)) if pm.pointwise[a] else \
                np.broadcast_to(np.reshape(d, (1, size_in)), (n, size_in))
            total = total + np.einsum("noi,ni->no", J.reshape(n, -1, size_in),
                                      d_flat).reshape(J.shape[:1 + len(pm.out_point_shapes[o])])
        Jh.append(total)
    F0 = pm.evaluate(args)
    epsilons = [1e-2 / 2 ** i for i in range(5)]
    residuals = []
    for eps in epsilons:
        Fp = pm.evaluate([a + eps * np.asarray(d) for a, d in zip(args, h)])
        residuals.append(max(np.max(np.abs(fp - f0 - eps * jh)) for fp, f0, jh in zip(Fp, F0, Jh)))
    assert min(crk.convergence_rates(residuals, epsilons)) >= R1_RATE, residuals
    # forward and reverse agree
    other = pm.jacobians(*args, mode="reverse" if mode == "forward" else "forward")
    for row_a, row_b in zip(jacs, other):
        for a, b in zip(row_a, row_b):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_point_map_errors_and_empty_pieces():
    u, g = np.zeros(4), np.zeros((4, 2))
    with pytest.raises(ValueError, match=r"argument 'g' \(1\) expected shape \(n, 2\) \(n points\)"
                                         r", received \(4, 3\)"):
        FLUX(u, np.zeros((4, 3)), 3.0)
    with pytest.raises(ValueError, match=r"argument 'p' \(2\) \(a parameter\) expected "
                                         r"shape \(\), received \(2,\)"):
        FLUX(u, g, np.ones(2))
    empty = FLUX.jacobians(u[:0], g[:0], 3.0)
    assert [J.shape for J in empty[0]] == [(0, 2), (0, 2, 2), (0, 2)]
    out = FLUX.evaluate((u[:0], g[:0], 3.0))
    assert out[0].shape == (0, 2)
    assert FLUX.vjp((u[:0], g[:0], 3.0), (np.zeros((0, 2)),), (2,))[0] == 0.0


# -- MPI: a replicated parameter on distributed points ------------------------------------------
@pytest.mark.mpi
@pytest.mark.parametrize("n", [13, 2], ids=["13-points", "2-points"])
def test_mpi_replicated_parameter(n, comm, split, assert_replicated):
    """The flux's parameter replicated, points distributed unevenly (2 points on 3 ranks leave
    one rank empty): J, dJ/dp and the Hessian action are bit-identical on all ranks and equal
    to the serial result computed in-process on all points."""
    points = np.random.default_rng(11).random((n, 2))

    def compute(x_value, distributed):
        with crk.Tape():
            p = crk.AdjFloat(3.0)
            x = crk.array(x_value, comm=comm, distributed=distributed)
            J = crk.sum(FLUX(x[:, 0], x, p) ** 2)
            rf = crk.ReducedFunctional(J, [crk.Control(p)])
            return J, plain(rf.derivative()[0]), plain(rf.hessian([0.7])[0])

    J_ref, grad_ref, hess_ref = compute(points, False)
    J, grad, hess = compute(points[split(n)], True)
    for got, ref in ((J, J_ref), (grad, grad_ref), (hess, hess_ref)):
        assert_replicated(got)
        np.testing.assert_allclose(plain(got), plain(ref), rtol=1e-12)
