"""crk.overload_jax: one block per call, four derivative kinds, float64 without a global flag,
residual reuse or rematerialisation, compiled-program reuse, nested transforms, pointwise + MPI."""
import collections
import gc
import os
import subprocess
import sys

import numpy as onp
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

import crk  # noqa: E402
from crk import Control, ReducedFunction, ReducedFunctional, overload_jax, taylor_to_dict  # noqa
from crk.backends.jax import bucket_size  # noqa: E402


def assert_taylor(rates):
    """R1 (and R1_adjoint) rates ≥ 1.9, R2 rates ≥ 2.9."""
    for key, bound in (("R1", 1.9), ("R1_adjoint", 1.9), ("R2", 2.9)):
        if key in rates:
            assert min(rates[key]["Rate"]) >= bound, (key, rates[key])


def test_crikit_example():
    import numpy
    numpy.random.seed(3)                   # reproducible; CRIKit's example follows verbatim
    # --- CRIKit's overload_jax example, with only its imports changed to crk ---
    from jax import numpy as np
    import numpy as onp
    from crk import array, overload_jax, ReducedFunction, taylor_test, Control
    from jax.tree_util import Partial as partial  # or, from functools import partial

    #differentiate with respect to both non-self arguments.
    #Also, we want this function to recompute its internal linearization points
    #when differentiated, instead of storing them
    @partial(overload_jax,argnums=(0,1),remat=True)
    def my_func(x, y):
        return np.exp(np.trace(x @ y))


    inputs = (array(onp.random.randn(3,3)),array(onp.random.randn(3,3)))
    controls = [Control(x) for x in inputs]
    output = my_func(*inputs)
    rf = ReducedFunction(output,controls)
    h = [1.0e-1 * array(onp.random.randn(*x.shape) for x in inputs)]
    assert taylor_test(rf,inputs,h) >= 1.9


# -- Taylor tests over kinds of functions x remat x jit ------------------------------------------
def _single(x):
    return jnp.sin(x) * jnp.sum(x ** 2)


def _multi(x, y):
    return x @ y, jnp.sum(jnp.tanh(y)) * x[0, 0]


def _pytree_out(x, y):
    return {"a": jnp.sin(x) * y[0], "b": (jnp.sum(x ** 3) * y, jnp.arange(3))}


def _static(x, power, mode):
    return jnp.sum(jnp.abs(x) ** power) if mode == "sum" else jnp.cumprod(jnp.cos(x))


def _pytree_in(params, x):
    return jnp.tanh(params["w"] @ x + params["b"]) * params["s"]


def _case(name, rng):
    """(function, overload options, args, controls' values, directions, output selector)."""
    x = crk.array(rng.standard_normal((3, 3)))
    v = crk.array(rng.standard_normal(4))
    if name == "single":
        return _single, {}, (v,), [v], [rng.standard_normal(4)], lambda o: o
    if name == "multi":
        y = crk.array(rng.standard_normal((3, 2)))
        return _multi, {}, (x, y), [x, y], [rng.standard_normal((3, 3)),
                                            rng.standard_normal((3, 2))], list
    if name == "pytree_out":
        y = crk.array(rng.standard_normal(2))
        return (_pytree_out, {}, (v, y), [v, y], [rng.standard_normal(4), rng.standard_normal(2)],
                lambda o: [o["a"], o["b"][0]])
    if name == "static":
        return (_static, {"static_argnums": (1, 2)}, (v, 3, "sum"), [v], [rng.standard_normal(4)],
                lambda o: o)
    if name == "pytree_in":
        w = crk.array(rng.standard_normal((2, 4)))
        b = crk.array(rng.standard_normal(2))
        s = crk.AdjFloat(1.5)
        return (_pytree_in, {}, ({"w": w, "b": b, "s": s}, v), [w, b, s, v],
                [rng.standard_normal((2, 4)), rng.standard_normal(2), 0.7,
                 rng.standard_normal(4)], lambda o: o)
    raise KeyError(name)


@pytest.mark.parametrize("jit", [True, False], ids=["jit", "eager"])
@pytest.mark.parametrize("remat", [False, True], ids=["residuals", "remat"])
@pytest.mark.parametrize("name", ["single", "multi", "pytree_out", "static", "pytree_in"])
def test_taylor(name, remat, jit):
    rng = onp.random.default_rng(1)
    fn, options, args, controls, directions, select = _case(name, rng)
    f = overload_jax(fn, remat=remat, jit=jit, **options)
    with crk.Tape() as tape:
        out = f(*args)
        assert len(tape) == 1                                   # one block per call
        outputs = select(out)
        rf = ReducedFunction(outputs, [Control(c) for c in controls])
        assert_taylor(taylor_to_dict(rf, controls, directions))


def test_pytree_output_structure():
    f = overload_jax(_pytree_out)
    x, y = crk.array(onp.linspace(0, 1, 4)), crk.array([2.0, 3.0])
    with crk.Tape():
        out = f(x, y)
    assert set(out) == {"a", "b"} and isinstance(out["b"], tuple)
    assert isinstance(out["a"], crk.ndarray) and isinstance(out["b"][0], crk.ndarray)
    assert not isinstance(out["b"][1], crk.OverloadedType)        # integers are not recorded
    onp.testing.assert_array_equal(out["b"][1], onp.arange(3))


@pytest.mark.parametrize("use", ["direct", "decorator", "decorator_args", "functools", "Partial"])
def test_ways_to_overload(use):
    import functools

    def g(x, y):
        return jnp.sum(x * jnp.exp(y))
    if use == "direct":
        f = overload_jax(g)
    elif use == "decorator":
        @overload_jax
        def g(x, y):
            return jnp.sum(x * jnp.exp(y))
        f = g
    elif use == "decorator_args":
        f = overload_jax(argnums=(0, 1))(g)
    elif use == "functools":
        f = functools.partial(overload_jax, argnums=(0, 1), remat=True)(g)
    else:
        f = jax.tree_util.Partial(overload_jax, argnums=(0, 1), remat=True)(g)
    assert f.__name__ == "g"
    x, y = crk.array([1.0, 2.0]), crk.array([0.5, -0.5])
    with crk.Tape():
        J = f(x, y)
        dJ = ReducedFunctional(J, [Control(x), Control(y)]).derivative()
    onp.testing.assert_allclose(dJ[0].value, onp.exp(y.value), rtol=1e-15)
    onp.testing.assert_allclose(dJ[1].value, x.value * onp.exp(y.value), rtol=1e-15)


def test_constant_arguments_outside_argnums():
    f = overload_jax(lambda x, c: jnp.sum(jnp.sin(x) * c), argnums=0)
    rng = onp.random.default_rng(2)
    x, c = crk.array(rng.standard_normal(5)), rng.standard_normal(5)
    with crk.Tape():
        J = f(x, c)                                   # plain c: a constant
        rf = ReducedFunctional(J, Control(x))
        assert_taylor(taylor_to_dict(rf, x, rng.standard_normal(5)))
        with pytest.raises(TypeError, match=r"argument 1 is a recorded crk value but is not in "
                                            r"argnums=\(0,\).*x\.value"):
            f(x, crk.array(c))
    with crk.stop_annotating():                       # nothing recorded: no derivative lost
        assert float(f(x, crk.array(c))) == pytest.approx(float(J), rel=1e-15)


def test_keyword_arguments_are_static_and_backend_is_chosen():
    f = overload_jax(lambda x, power=2: jnp.sum(x ** power), backend="cpu", remat=False)
    x = crk.array([1.0, 2.0])
    with crk.Tape():
        assert float(f(x, power=3)) == 9.0 and float(f(x, power=3)) == 9.0
        assert float(f(x)) == 5.0
    assert f.trace_counts["forward_vjp"] == 2           # one program per static value
    assert f.last_call.device.platform == "cpu"
    with pytest.raises(ValueError, match="backend='nonexistent': JAX has no such platform"):
        overload_jax(lambda a: a, backend="nonexistent")(x)


# -- float64 without flipping JAX's global flag -----------------------------------------------
def test_float64_without_global_flag():
    before = jax.config.jax_enable_x64
    user_dtype = jnp.ones(2).dtype
    f = overload_jax(lambda x: x * (1.0 + 1e-12))
    x = crk.array([1.0, 3.0])
    with crk.Tape():
        y = f(x)
        grad = ReducedFunctional(crk.sum(y), Control(x)).derivative()
    assert y.dtype == onp.float64
    onp.testing.assert_array_equal(y.value, x.value * (1.0 + 1e-12))   # float32 would lose it
    assert grad.value.dtype == onp.float64
    assert jax.config.jax_enable_x64 == before
    assert jnp.ones(2).dtype == user_dtype                    # the user's JAX is unchanged


def test_import_changes_nothing_in_jax():
    code = ("import sys, crk, crk.backends.jax, crk.cr.jax, crk.parallel\n"
            "assert 'jax' not in sys.modules, 'importing crk imported jax'\n"
            "import jax\n"
            "before = jax.config.jax_enable_x64\n"
            "f = crk.overload_jax(lambda a: a * 2.0)\n"
            "out = f(crk.array([1.0]))\n"
            "assert jax.config.jax_enable_x64 == before == False, before\n"
            "assert jax.numpy.ones(1).dtype == 'float32'\n"
            "print('ok')\n")
    env = {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"
           and not k.startswith(("PMI_", "PMIX_", "HYDI_", "HYDRA_", "MPI_LOCAL", "OMPI_"))}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=300)
    assert run.returncode == 0 and "ok" in run.stdout, run.stderr


# -- nested use inside an outer JAX transform -------------------------------------------------
def test_nested_transforms_record_nothing():
    f = overload_jax(lambda x, y: jnp.sum(jnp.sin(x) * y))
    x0 = onp.array([0.1, 0.2, 0.3])
    y = onp.array([1.0, 2.0, 3.0])
    with crk.Tape() as tape:
        with jax.enable_x64(True):
            g = jax.grad(lambda x: 2.0 * f(x, y))(x0)
            onp.testing.assert_allclose(g, 2.0 * onp.cos(x0) * y, rtol=1e-15)
            jitted = jax.jit(lambda x: f(x, y))(x0)
            assert float(jitted) == pytest.approx(float(onp.sum(onp.sin(x0) * y)), rel=1e-15)
            batched = jax.vmap(lambda x: f(x, y))(onp.stack([x0, 2 * x0]))
            assert batched.shape == (2,)
        assert len(tape) == 0
        with pytest.raises(TypeError, match="inside a JAX transform"):
            jax.grad(lambda x: f(x, crk.array(y)))(x0)
        with crk.stop_annotating():
            jax.grad(lambda x: f(x, crk.array(y)))(x0)


# -- residuals: kept and reused with remat=False, not kept with remat=True (the default) ----------
def test_residuals_reused_then_recomputed_then_released():
    rng = onp.random.default_rng(4)
    f = overload_jax(lambda x, p: jnp.sum(jnp.sin(jnp.outer(x, x)) * p), remat=False)
    x, p = crk.array(rng.standard_normal(6)), crk.AdjFloat(1.3)
    with crk.Tape() as tape:
        J = f(x, p)
        call = f.last_call
        assert call.residual_bytes() > 0
        rf = ReducedFunctional(J, [Control(x), Control(p)])
        rf.derivative()
        assert f.trace_counts["vjp_residuals"] == 1 and f.trace_counts["vjp"] == 0
        x1 = rng.standard_normal(6)
        rf([x1, 1.7])                                        # replay: residuals recomputed
        dx, dp = rf.derivative()
        assert f.trace_counts["vjp"] == 0
        onp.testing.assert_allclose(dx.value, 1.7 * 2 * onp.cos(onp.outer(x1, x1)) @ x1,
                                    rtol=1e-13)
        for block in tape.get_blocks():
            block.release()
        assert call.residual_bytes() == 0
        dx2, dp2 = rf.derivative()                           # recomputed by the vjp program
        assert f.trace_counts["vjp"] == 1
        onp.testing.assert_allclose(dx2.value, dx.value, rtol=1e-14)   # another program: round-off
        assert float(dp2) == pytest.approx(float(dp), rel=1e-14)


def _live_bytes():
    gc.collect()
    return sum(a.nbytes for a in jax.live_arrays())


@pytest.mark.parametrize("remat", [True, False])
def test_memory_held_after_forward(remat):
    n = 400                                              # intermediate: n*n doubles = 1.28 MB
    f = overload_jax(lambda x: jnp.sum(jnp.sin(jnp.outer(x, x))), remat=remat)
    x = crk.array(onp.linspace(0.0, 1.0, n))
    io_bytes = 8 * (n + 1)
    with crk.Tape():
        f(x)                                             # compile outside the measurement
        before = _live_bytes()
        J = f(x)
        held = _live_bytes() - before
        if remat:
            assert held <= 4 * io_bytes, held            # O(inputs + outputs)
            assert f.last_call.residual_bytes() == 0
        else:
            assert held >= 8 * n * n, held               # the linearisation is kept
            assert f.last_call.residual_bytes() >= 8 * n * n
        del J


# -- compiled programs are reused ---------------------------------------------------------------
def test_programs_compiled_once():
    f = overload_jax(lambda x, y: jnp.sum(jnp.exp(x) * y) ** 2, remat=False)
    rng = onp.random.default_rng(5)
    with crk.Tape():
        outs = []
        for _ in range(3):                               # three blocks, same shapes
            x, y = crk.array(rng.standard_normal(4)), crk.array(rng.standard_normal(4))
            outs.append((f(x, y), x, y))
        J = outs[0][0] + outs[1][0] + outs[2][0]
        controls = [c for _, x, y in outs for c in (x, y)]
        rf = ReducedFunctional(J, [Control(c) for c in controls])
        for _ in range(2):
            rf([rng.standard_normal(4) for _ in controls])
            rf.derivative()
            rf.hessian([rng.standard_normal(4) for _ in controls])
            rf.tlm([rng.standard_normal(4) for _ in controls])
    assert dict(f.trace_counts) == {"forward_vjp": 1, "vjp_residuals": 1, "jvp": 1, "hvp": 1}
    with crk.Tape():
        f(crk.array(onp.ones(5)), crk.array(onp.ones(5)))   # a new shape: one new trace
    assert f.trace_counts["forward_vjp"] == 2


# -- errors -------------------------------------------------------------------------------------
def test_error_messages():
    x = crk.array([1.0, 2.0])
    with pytest.raises(ValueError, match=r"argnums=\(0,\) and static_argnums=\(0,\) overlap"):
        overload_jax(lambda a: a, argnums=0, static_argnums=0)
    with pytest.raises(TypeError, match="expected a function"):
        overload_jax(3)
    f = overload_jax(lambda a, k: a * k, static_argnums=1)
    with pytest.raises(TypeError, match="argument 1 is a recorded crk value but is listed in "
                                        "static_argnums"):
        f(x, crk.AdjFloat(2.0))
    with pytest.raises(TypeError, match="argument 1 is static .* must be hashable, got ndarray"):
        f(x, onp.ones(2))
    g = overload_jax(lambda a: a, argnums=(0, 3))
    with pytest.raises(ValueError, match="argnums contains 3 but the function was called with "
                                         "1 positional argument"):
        g(x)
    h = overload_jax(lambda a, p: a * p, pointwise=(True, False))
    with pytest.raises(ValueError, match="pointwise argument 1 has|declared pointwise but is a "
                                         "scalar"):
        overload_jax(lambda a, b: a * b, pointwise=True)(x, crk.AdjFloat(1.0))
    with pytest.raises(ValueError, match=r"pointwise=\(True, False\) has 2 entries but the "
                                         r"function was called with 3"):
        h(x, 1.0, 2.0)
    s = overload_jax(lambda a: jnp.sum(a), pointwise=True)
    with pytest.raises(ValueError, match="every output needs the point axis first"):
        s(x)


def test_pointwise_point_counts_must_agree():
    f = overload_jax(lambda a, b: a * b, pointwise=True)
    with pytest.raises(ValueError, match=r"pointwise argument 1 has 3 points \(axis 0\) but "
                                         r"argument 0 has 2"):
        f(crk.array([1.0, 2.0]), crk.array([1.0, 2.0, 3.0]))


def test_distributed_argument_needs_pointwise(comm):
    x = crk.array(onp.ones(3), comm=comm, distributed=True)
    f = overload_jax(lambda a: a * 2.0)
    with pytest.raises(ValueError, match="argument 0 is distributed .* not declared pointwise"):
        f(x)
    g = overload_jax(lambda a, p: a * p, pointwise=(False, True))
    with pytest.raises(ValueError, match="argument 0 is distributed .* it is not declared "
                                         "pointwise"):
        g(x, crk.array(onp.ones(3)))


# -- pointwise functions: padding to buckets ------------------------------------------------------
def test_programs_compile_with_crk_compiler_options():
    """crk's programs are compiled with PROGRAM_OPTIONS where this jaxlib knows them: the
    per-point reduction of a flux then compiles to XLA's own loops, not YNN library calls, and
    gives the same values."""
    from crk.backends._jax_kernels import PROGRAM_OPTIONS, Kernels, compiler_options, float64

    def flux(xs):
        g, = xs
        s = 0.01 + jnp.sum(g * g, axis=1)
        return s[:, None] * g

    opts = compiler_options()
    assert opts is None or opts == PROGRAM_OPTIONS
    g = onp.random.default_rng(0).random((4096, 2))   # (XLA fuses by YNN from ~4096 points)
    with float64():
        program = Kernels(flux, True, collections.Counter()).forward()
        out = onp.asarray(program((g,)))
        if opts is not None:
            text = program.lower((g,)).compile().as_text()
            assert "ynn" not in text.lower(), text
    onp.testing.assert_allclose(out, (0.01 + (g * g).sum(1))[:, None] * g, rtol=1e-15)


def test_bucket_sizes():
    assert [bucket_size(n) for n in (0, 1, 8, 9, 13, 15, 16, 17, 100, 1000)] == \
        [8, 8, 8, 9, 13, 15, 16, 18, 104, 1024]
    for n in range(1, 5000, 37):
        assert n <= bucket_size(n) < max(9, n + n / 8)


def _flux(u, p):
    """A pointwise map: u (n, 2), parameter p (2,) -> (n, 2)."""
    r2 = jnp.sum(u * u, axis=1, keepdims=True)
    return u * (1.0 + r2) ** (0.5 * p[0]) + jnp.sin(p[1] * u)


def test_pointwise_padding_does_not_change_results():
    rng = onp.random.default_rng(6)
    u, p = rng.standard_normal((17, 2)), onp.array([0.7, 1.3])
    padded = overload_jax(_flux, pointwise=(True, False))          # 17 -> 18 points compiled
    plain = overload_jax(_flux, pointwise=(True, False), jit=False)  # no padding
    results = []
    for f in (padded, plain):
        with crk.Tape():
            uc, pc = crk.array(u), crk.array(p)
            out = f(uc, pc)
            rf = ReducedFunctional(crk.sum(out ** 2), [Control(uc), Control(pc)])
            results.append([out.value] + [d.value for d in rf.derivative()]
                           + [h.value for h in rf.hessian([u, p])])
        assert f.last_call.n == 17
    assert padded.last_call.bucket == 18 and plain.last_call.bucket == 17
    for a, b in zip(*results):
        onp.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-14)


def test_pointwise_taylor_and_bucket_reuse():
    rng = onp.random.default_rng(7)
    f = overload_jax(_flux, pointwise=(True, False), remat=True)
    for n in (33, 35, 36):                                 # one bucket (36): one program
        with crk.Tape():
            u, p = crk.array(rng.standard_normal((n, 2))), crk.array([0.7, 1.3])
            rf = ReducedFunctional(crk.sum(f(u, p) ** 2), [Control(u), Control(p)])
            assert_taylor(taylor_to_dict(rf, [u, p], [rng.standard_normal((n, 2)),
                                                      rng.standard_normal(2)]))
    assert dict(f.trace_counts) == {"forward": 1, "vjp": 1, "jvp": 1, "hvp": 1}


@pytest.mark.mpi
@pytest.mark.parametrize("n_global", [2, 23])
def test_pointwise_distributed_matches_serial(comm, split, assert_replicated, n_global):
    """Distributed points with a replicated parameter: the parameter's gradient is summed over
    ranks, identical everywhere and equal to the serial one (2 points: some ranks hold none)."""
    rng = onp.random.default_rng(8)
    u_full = rng.standard_normal((n_global, 2))
    du_full = rng.standard_normal((n_global, 2))
    p0, dp = onp.array([0.7, 1.3]), onp.array([0.3, -0.2])
    mine = split(n_global)
    f = overload_jax(_flux, pointwise=(True, False))

    def run(u_value, distributed, du):
        with crk.Tape():
            u = crk.array(u_value, comm=comm, distributed=distributed)
            p = crk.array(p0)
            J = crk.sum(f(u, p) ** 2)
            bucket = f.last_call.bucket
            rf = ReducedFunctional(J, [Control(u), Control(p)])
            du_, dp_ = rf.derivative()
            hu, hp = rf.hessian([du, dp])
            rates = taylor_to_dict(rf, [u, p], [du, dp])
            return float(J), du_.value, dp_.value, hu.value, hp.value, rates, bucket

    J, gu, gp, hu, hp, rates, bucket = run(u_full[mine], True, du_full[mine])
    assert_taylor(rates)
    # every rank padded to the same point count, so all ranks with points ran the same programs
    assert len(set(comm.allgather(bucket))) == 1
    counts = comm.allgather(dict(f.trace_counts) if mine.stop > mine.start else None)
    assert len({tuple(sorted(c.items())) for c in counts if c is not None}) == 1
    Js, gus, gps, hus, hps, _, _ = run(u_full, False, du_full)
    for value in (J, gp, hp):
        assert_replicated(value)
    assert J == pytest.approx(Js, rel=1e-12)
    onp.testing.assert_allclose(gp, gps, rtol=1e-12)
    onp.testing.assert_allclose(hp, hps, rtol=1e-12)
    onp.testing.assert_allclose(gu, gus[mine], rtol=1e-12, atol=1e-14)
    onp.testing.assert_allclose(hu, hus[mine], rtol=1e-12, atol=1e-14)
