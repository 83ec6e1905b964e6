"""The JAX, Autograd and TensorFlow snippets of CRIKit's "Automatic Differentiation Systems" page,
runnable with crk's names, each followed by a Taylor test of what it recorded.

    mpirun -n N python examples/seed_snippets.py [--only jax|autograd|tensorflow]

What changed from the page: imports come from ``crk`` (``array``, ``overload_jax``,
``ReducedFunction``, ``taylor_test``, ``Control``, ``create_overloaded_object``,
``crk.tensorflow.run_tensorflow_graph``, ``crk.cr.autograd.point_map``); JAX's
``checkpoint=True`` is ``remat=True``; the page's direction ``h`` (a list holding one generator)
is one array per input; random numbers come from a seeded generator, so every rank holds the
same (replicated) values. Each snippet prints its Taylor remainder rate (≈ 2).
"""
import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def jax_snippet(say):
    from jax import numpy as np
    import numpy as onp
    from crk import array, overload_jax, ReducedFunction, taylor_test, Control
    from jax.tree_util import Partial as partial  # or, from functools import partial
    import crk

    rng = onp.random.default_rng(0)

    # differentiate with respect to both non-self arguments; recompute the internal
    # linearisation points when differentiated instead of storing them
    @partial(overload_jax, argnums=(0, 1), remat=True)
    def my_func(x, y):
        return np.exp(np.trace(x @ y))

    with crk.Tape():
        inputs = (array(0.3 * rng.standard_normal((3, 3))),
                  array(0.3 * rng.standard_normal((3, 3))))
        controls = [Control(x) for x in inputs]
        output = my_func(*inputs)
        rf = ReducedFunction(output, controls)
        h = [1.0e-1 * array(rng.standard_normal(x.shape)) for x in inputs]
        rate = taylor_test(rf, inputs, h)
    say(f"jax: exp(trace(x @ y)) = {float(output):.6f}; Taylor rate {rate:.3f}")
    assert rate >= 1.9
    return rate


def autograd_snippet(say):
    import autograd.numpy as np
    import numpy as onp
    import crk
    from crk.cr.autograd import point_map

    @point_map(((-1,), (-1, 2), ()), (-1, 2), bare=True)
    def f(u, g, p):
        mu = (np.sum(g * g, axis=1) + 1.e-12) ** ((p - 2.) / 2.)
        return np.reshape(mu, mu.shape + (1,)) * g

    rng = onp.random.default_rng(1)
    with crk.Tape():
        u = crk.array(rng.standard_normal(10))
        g = crk.array(rng.standard_normal((10, 2)))
        p = crk.AdjFloat(3.0)
        q = f(u, g, p)
        J = crk.sum(q * q)
        rf = crk.ReducedFunctional(J, [crk.Control(g), crk.Control(p)])
        rate = crk.taylor_test(rf, [g, p], [0.1 * rng.standard_normal((10, 2)), 0.1])
        jac = f.point_map.jacobians(u, g, p)
    say(f"autograd: p-Laplacian flux at 10 points, per-point Jacobians "
        f"dq/dg {onp.shape(jac[0][1])}; Taylor rate {rate:.3f}")
    assert rate >= 1.9
    return rate


def tensorflow_snippet(say):
    import tensorflow.compat.v1 as tf
    import numpy as np
    from tensorflow.keras import layers
    import crk

    import keras
    keras.utils.set_random_seed(0)                    # the same weights on every rank
    g = tf.Graph()
    with g.as_default():
        g_input = tf.placeholder(dtype=tf.float64, shape=(None, 2), name='input_data')

        z = g_input
        for layer_size in [40, 30, 20]:
            z = layers.Dense(layer_size, activation='tanh')(z)

        g_output = layers.Dense(1, activation='linear')(z)

        init = tf.global_variables_initializer()

        sess = tf.Session()
        sess.run(init)

    # Run the graph on some random input.
    input = np.random.default_rng(2).random((15, 2))
    output = sess.run(g_output, {g_input: input})

    from crk.tensorflow import run_tensorflow_graph
    from crk import create_overloaded_object as coo

    with sess.as_default(), crk.Tape():
        pyadjoint_input = coo(input)
        output = run_tensorflow_graph(g_output, {g_input: pyadjoint_input})
        J = crk.sum(output ** 2)
        rf = crk.ReducedFunctional(J, crk.Control(pyadjoint_input))
        # Keras computes in float32: steps large enough to stay above its round-off
        rate = crk.taylor_test(rf, pyadjoint_input, 0.05 * np.ones((15, 2)),
                               epsilons=(0.2, 0.1, 0.05, 0.025))
    sess.close()
    from mpi4py import MPI
    values = MPI.COMM_WORLD.allgather(np.asarray(output.value))
    assert all(np.array_equal(v, values[0]) for v in values), "weights differ between ranks"
    say(f"tensorflow: a Keras network in a tf.compat.v1 graph, output {output.shape}; "
        f"Taylor rate {rate:.3f}")
    assert rate >= 1.8
    return rate


SNIPPETS = {"jax": jax_snippet, "autograd": autograd_snippet,
            "tensorflow": tensorflow_snippet}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=sorted(SNIPPETS), help="run one snippet")
    parser.add_argument("--output", help="(ignored: the snippets write no files)")
    parser.add_argument("--quiet", action="store_true", help="(ignored: one line per snippet)")
    args = parser.parse_args()
    from mpi4py import MPI
    import crk
    comm = MPI.COMM_WORLD
    crk.parallel.abort_on_uncaught_exception(comm)
    say = print if comm.rank == 0 else (lambda *a, **k: None)
    for name, snippet in SNIPPETS.items():
        if args.only in (None, name):
            snippet(say)
    say("seed_snippets passed", flush=True)


if __name__ == "__main__":
    main()
