"""AD backends: external differentiable functions recorded as one block per call.

One public module per backend, each built on :mod:`crk.function_block`: ``jax.py``
(:func:`~crk.backends.jax.overload_jax`; its one-call block in ``_jax_call.py``, precision,
devices, padding and compiled programs in ``_jax_kernels.py``), ``tensorflow.py`` (TF2
functions and Keras models) and ``tensorflow_graph.py`` (tf.compat.v1 graphs in a session).
``common.py`` holds what they and the point maps of :mod:`crk.cr` share (lazy import of
the libraries, plain values, TensorFlow results as numpy). Autograd
is used only through point maps (:mod:`crk.cr.autograd`). Importing this package (or any
backend module) imports no backend library: JAX and TensorFlow are imported inside the
functions that need them.
"""
