"""What the backend modules (and the point maps of :mod:`crk.cr`) share: the backend libraries
imported on first use, plain values, TensorFlow values as float64 numpy arrays.

Importing this module imports no backend library. Nothing here is collective.
"""
import importlib

import numpy as np

from ..overloaded_type import OverloadedType, plain_value  # noqa: F401 (re-exported)


def import_backend(module, label, extra):
    """Import the backend library ``module`` (e.g. "jax") when first needed.

    A missing library is an ImportError naming the backend (``label``, e.g. "JAX") and the
    pip extra that installs it (``extra``), instead of a bare ModuleNotFoundError deep in a call.
    """
    try:
        return importlib.import_module(module)
    except ImportError:   # pragma: no cover - depends on the installation
        raise ImportError(f"crk's {label} backend needs {label}: "
                          f"pip install 'crk[{extra}]'") from None


def is_recorded(value):
    """True for a crk value (an :class:`~crk.overloaded_type.OverloadedType`)."""
    return isinstance(value, OverloadedType)


def import_tensorflow():
    """The ``tensorflow`` module, imported on first use."""
    return import_backend("tensorflow", "TensorFlow", "tensorflow")


def is_tensorflow_value(value):
    """True for a TensorFlow tensor or variable (imports TensorFlow)."""
    tf = import_tensorflow()
    return isinstance(value, (tf.Tensor, tf.Variable))


def to_float64(value):
    """A TensorFlow (or numpy) result as a float64 numpy array (None stays None)."""
    if value is None:
        return None
    return np.asarray(value.numpy() if hasattr(value, "numpy") else value, dtype=np.float64)
