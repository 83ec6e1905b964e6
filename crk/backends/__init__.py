"""AD backends: external differentiable functions recorded as one block per call.

One module per backend (``jax.py``, ``autograd.py``, ``tensorflow.py``), each built on
:mod:`crk.function_block`. Importing this package (or any backend module) imports no backend
library: JAX, Autograd and TensorFlow are imported inside the functions that need them.
"""
