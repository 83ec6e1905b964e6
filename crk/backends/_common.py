"""What every backend module needs: the backend library imported on first use, plain values.

Importing this module imports no backend library. Nothing here is collective.
"""
import importlib

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
