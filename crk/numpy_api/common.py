"""What every numpy-like function needs to know about its arguments, and the shared refusals."""
import numpy as np

from ..numpy_rules.broadcasting import normalize_axes
from ..overloaded_type import OverloadedType, plain_value

__all__ = ["is_distributed", "is_recorded", "ndim_of", "shape_of", "normalize_axes",
           "over_distributed_axis", "refuse_distributed", "refuse_distributed_axis",
           "refuse_unsupported", "plain_value"]


def is_recorded(x):
    return isinstance(x, OverloadedType)


def is_distributed(x):
    return isinstance(x, OverloadedType) and x._ad_distributed


def ndim_of(x):
    return np.ndim(plain_value(x))


def shape_of(x):
    return np.shape(plain_value(x))


def over_distributed_axis(x, axis):
    """Whether reducing ``x`` over ``axis`` (None: all) involves its distributed axis 0."""
    if not is_distributed(x):
        return False
    ndim = ndim_of(x)
    return ndim == 0 or 0 in normalize_axes(axis, ndim)


def refuse_distributed_axis(name, axis):
    """The error for an operation along the distributed axis 0 that crk does not implement."""
    which = "axis None (the flattened array) runs along" if axis is None else \
        f"axis {axis!r} is"
    raise ValueError(
        f"crk.{name}: {which} the distributed axis 0 of a distributed array, and {name} along "
        f"the distributed axis is not supported (it would need values from other ranks). Use "
        f"another axis, or a replicated array.")


def refuse_distributed(name, why):
    """The error for a function with no distributed meaning in crk (on every rank count)."""
    raise ValueError(f"crk.{name}: not supported for distributed arrays: {why}")


def refuse_unsupported(name, **options):
    """Refuse keyword options crk does not record (those not at their numpy default)."""
    given = {k: v for k, v in options.items() if v is not None}
    if given:
        shown = ", ".join(f"{k}={v!r}" for k, v in sorted(given.items()))
        raise TypeError(f"crk.{name}: {shown} is not supported on recorded values; only the "
                        f"default is recorded")
