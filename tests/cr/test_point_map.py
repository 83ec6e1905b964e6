"""Backend-independent PointMap behaviour (crk.cr.point_map): shape specs and their errors,
composition with ``PointMap.compose`` and the Jacobians and derivatives of composed maps.
The concrete maps are Autograd point maps (the lightest backend)."""
import numpy as onp
import pytest

import crk
from crk.cr import ComposedPointMap, PointMap

pytest.importorskip("autograd")
import autograd.numpy as anp  # noqa: E402

from crk.cr.autograd import point_map  # noqa: E402


def strain_measures(u, g, p):
    """Inner map: s = u (1 + |g|^2)^(p/4)  (n,)  and  v = (1 + u^2) g  (n, 2)."""
    s = u * (1. + anp.sum(g * g, axis=1)) ** (p / 4.)
    v = anp.reshape(1. + u ** 2, (-1, 1)) * g
    return s, v


def stress(s, v):
    """Outer map: sin(s) v + v^3  (n, 2)."""
    return anp.reshape(anp.sin(s), (-1, 1)) * v + v ** 3


def composite(u, g, p):
    return stress(*strain_measures(u, g, p))


INNER = point_map(((-1,), (-1, 2), ()), ((-1,), (-1, 2)))(strain_measures)
OUTER = point_map(((-1,), (-1, 2)), (-1, 2))(stress)
DIRECT = point_map(((-1,), (-1, 2), ()), (-1, 2))(composite)
COMPOSED = OUTER.compose(INNER)


def sample(n, seed=0):
    rng = onp.random.default_rng(seed)
    return [0.7 * rng.standard_normal(n), 0.7 * rng.standard_normal((n, 2)), 2.7]


def small_directions(seed=1, n=6):
    rng = onp.random.default_rng(seed)
    return [0.15 * rng.standard_normal(n), 0.15 * rng.standard_normal((n, 2)),
            1.0]          # p enters weakly: a unit step keeps R2 above round-off


def test_compose_shapes_and_names():
    assert isinstance(COMPOSED, ComposedPointMap) and isinstance(COMPOSED, PointMap)
    assert COMPOSED.name == "stress∘strain_measures"
    assert COMPOSED.arg_names == ("u", "g", "p")
    assert COMPOSED.pointwise == (True, True, False)
    assert COMPOSED.single_output and COMPOSED.out_point_shapes == ((2,),)
    args = sample(5)
    onp.testing.assert_allclose(COMPOSED(*args), composite(*args), rtol=1e-15)


def test_compose_mismatch_is_refused():
    with pytest.raises(ValueError, match=r"compose: strain_measures takes arguments of shapes "
                                         r"\(\(-1,\), \(-1, 2\), \(\)\) but stress returns "
                                         r"\(\(-1, 2\),\)"):
        INNER.compose(OUTER)


def test_shape_errors_of_a_composed_map_name_the_inner_arguments():
    u, g, p = sample(4)
    with pytest.raises(ValueError, match=r"stress∘strain_measures: argument 'u' \(0\) expected "
                                         r"shape \(n,\) \(n points\), received \(4, 1\)"):
        COMPOSED(u[:, None], g, p)
    with pytest.raises(ValueError, match=r"argument 'p' \(2\) \(a parameter\) expected shape "
                                         r"\(\), received \(1,\)"):
        COMPOSED(u, g, onp.array([p]))


def test_bad_shape_spec():
    with pytest.raises(ValueError, match=r"in_shapes\[1\]: a shape is a tuple of sizes with an "
                                         r"optional leading -1 for the point axis, got \(2, -1\)"):
        point_map(((-1,), (2, -1), ()), (-1, 2), name="flux")(composite)


def test_repr():
    assert repr(OUTER) == "<AutogradPointMap stress: ((-1,), (-1, 2)) -> ((-1, 2),)>"


def test_composed_jacobians_chain_rule():
    """Jacobians of the composition (per-point chain rule) equal those of the composite written
    as one map, and the per-point linearisation has a second-order remainder."""
    n = 6
    args = sample(n)
    composed = COMPOSED.jacobians(*args)
    direct = DIRECT.jacobians(*args)
    for a, b, shape in zip(composed[0], direct[0], [(n, 2), (n, 2, 2), (n, 2)]):
        assert a.shape == shape
        onp.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    h = small_directions(n=n)
    Jh = (composed[0][0] * h[0][:, None] + onp.einsum("noi,ni->no", composed[0][1], h[1])
          + composed[0][2] * h[2])
    F0 = COMPOSED.evaluate(args)[0]
    epsilons = [1e-2 / 2 ** i for i in range(5)]
    residuals = [onp.max(onp.abs(COMPOSED.evaluate([x + e * d for x, d in zip(args, h)])[0]
                                 - F0 - e * Jh)) for e in epsilons]
    assert min(crk.convergence_rates(residuals, epsilons)) >= 1.9, residuals


@pytest.mark.parametrize("controls", [(0, 1, 2), (1,), (2,)], ids=["u,g,p", "g", "p"])
def test_composed_map_taylor(controls):
    """A composed map records one block whose adjoint, TLM and Hessian come from the chain
    rule on the two maps' hooks."""
    args = sample(6)
    h = small_directions()
    with crk.Tape() as tape:
        values = [crk.array(args[0]), crk.array(args[1]), crk.AdjFloat(args[2])]
        out = COMPOSED(*values)
        assert len(tape.get_blocks()) == 1
        J = crk.sum(out * out) + crk.sum(crk.sin(out))
        rf = crk.ReducedFunctional(J, [crk.Control(values[k]) for k in controls])
        rates = crk.taylor_to_dict(rf, [args[k] for k in controls], [h[k] for k in controls])
    assert min(rates["R1"]["Rate"]) >= 1.9, rates["R1"]
    assert min(rates["R2"]["Rate"]) >= 2.9, rates["R2"]


def test_composed_vector_taylor():
    args = sample(5)
    h = small_directions(n=5)
    with crk.Tape():
        values = [crk.array(args[0]), crk.array(args[1]), crk.AdjFloat(args[2])]
        rf = crk.ReducedFunction(COMPOSED(*values), [crk.Control(v) for v in values])
        rates = crk.taylor_to_dict(rf, args, h)
        assert crk.check_duality(rf, h) < 1e-12
    for key in ("R1", "R1_adjoint"):
        assert min(rates[key]["Rate"]) >= 1.9, rates[key]
    assert min(rates["R2"]["Rate"]) >= 2.9, rates["R2"]


# -- chunked per-point Jacobians, every backend -----------------------------------------------------
def _flux_map(backend):
    """CRIKit's p-Laplacian flux example as a point map of ``backend``, plus (u, g, p) with
    n = 11."""
    shapes = (((-1,), (-1, 2), ()), (-1, 2))
    if backend == "autograd":
        def flux(u, g, p):
            mu = (anp.sum(g * g, axis=1) + 1e-12) ** ((p - 2.) / 2.)
            return anp.reshape(mu, (-1, 1)) * g
        return point_map(*shapes)(flux)
    if backend == "jax":
        jnp = pytest.importorskip("jax.numpy")
        from crk.cr.jax import point_map as jax_point_map
        return jax_point_map(*shapes)(
            lambda u, g, p: ((jnp.sum(g * g, axis=1) + 1e-12) ** ((p - 2.) / 2.))[:, None] * g)
    tf = pytest.importorskip("tensorflow")
    from crk.cr.tensorflow import point_map as tf_point_map
    return tf_point_map(*shapes)(
        lambda u, g, p: ((tf.reduce_sum(g * g, axis=1) + 1e-12) ** ((p - 2.) / 2.))[:, None] * g)


@pytest.mark.parametrize("mode", [None, "forward", "reverse"])
@pytest.mark.parametrize("backend", ["autograd", "jax", "tensorflow"])
def test_chunked_jacobians_equal_one_pass(backend, mode):
    """Filling the Jacobian 4 points at a time (chunks 4, 4, 3) gives the one-pass result, for
    pointwise arguments and the parameter alike; the result is contiguous (n, *out, *in)."""
    pm = _flux_map(backend)
    u, g, p = sample(11, seed=4)
    whole = pm.jacobians(u, g, p, mode=mode)
    chunked = pm.jacobians(u, g, p, mode=mode, chunk_size=4)
    for row_w, row_c in zip(whole, chunked):
        assert [j.shape for j in row_c] == [(11, 2), (11, 2, 2), (11, 2)]
        for a, b in zip(row_w, row_c):
            assert b.flags.c_contiguous
            onp.testing.assert_allclose(b, a, rtol=1e-13, atol=1e-15)
    # the chunks really are computed separately: column 0 of dflux/dg at point 9 by differences
    step = 1e-6
    e = onp.zeros_like(g)
    e[:, 0] = 1.0
    fd = (pm.evaluate((u, g + step * e, p))[0] - pm.evaluate((u, g - step * e, p))[0]) / (2 * step)
    onp.testing.assert_allclose(chunked[0][1][:, :, 0], fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("backend", ["autograd", "jax", "tensorflow"])
def test_jacobians_argument_errors(backend):
    pm = _flux_map(backend)
    u, g, p = sample(5)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match=r"argument 'chunk_size' must be a positive integer"
                                             rf" \(points per pass\), got {bad!r}"):
            pm.jacobians(u, g, p, chunk_size=bad)
    with pytest.raises(ValueError, match=r"argument 'mode' must be None, 'forward' or 'reverse'"
                                         r", got 'sideways'"):
        pm.jacobians(u, g, p, mode="sideways")
    empty = pm.jacobians(u[:0], g[:0], p)
    assert [j.shape for j in empty[0]] == [(0, 2), (0, 2, 2), (0, 2)]


@pytest.mark.parametrize("mode", [None, "forward", "reverse"])
@pytest.mark.parametrize("backend", ["autograd", "jax", "tensorflow", "composed"])
def test_value_and_jacobians_equal_separate_calls(backend, mode):
    """value_and_jacobians gives evaluate's outputs and jacobians' blocks (chunked too, with a
    subset of arguments in any order); the JAX map takes both from one compiled program."""
    pm = COMPOSED if backend == "composed" else _flux_map(backend)
    u, g, p = sample(11, seed=5)
    outs, jac = pm.value_and_jacobians(u, g, p, argnums=(1, 0), mode=mode, chunk_size=4)
    assert isinstance(outs, tuple) and len(outs) == 1
    onp.testing.assert_allclose(outs[0], pm.evaluate((u, g, p))[0], rtol=1e-14, atol=1e-15)
    separate = pm.jacobians(u, g, p, argnums=(1, 0), mode=mode)
    assert [j.shape for j in jac[0]] == [(11, 2, 2), (11, 2)]
    for a, b in zip(jac[0], separate[0]):
        onp.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
    if backend == "jax":
        traces = dict(pm.trace_counts)
        pm.value_and_jacobians(u, g, p, argnums=(1, 0), mode=mode, chunk_size=4)
        assert pm.trace_counts == traces          # compiled once, reused
