"""AdjFloat: numpy's functions on it are recorded (never silently computed off the tape), Python's
own operations say what they are, and the explicit exits are the only plain values."""
import math

import numpy as np
import pytest

import crk
from crk.numpy_api import dispatch
from crk.overloaded_type import OverloadedType


def _derivative(fn, x0):
    with crk.Tape():
        x = crk.AdjFloat(x0)
        J = fn(x)
        assert isinstance(J, crk.AdjFloat), f"{type(J).__name__} left the tape"
        return float(crk.compute_gradient(J, crk.Control(x)))


def test_clip_times_x():
    """The example that used to give 0.7: clip leaves 0.7 alone, so d/dx (clip(x) x) = 2x."""
    assert _derivative(lambda x: np.clip(x, 0.1, 0.9) * x, 0.7) == pytest.approx(1.4, rel=1e-15)


def _scalar(value):
    return crk.sum(value) if isinstance(value, crk.ndarray) else value


# numpy functions that once turned an AdjFloat into a plain float64 without a word
FORMER_LEAKS = {
    "clip": lambda x: np.clip(x, 0.1, 0.9) * x,
    "cumsum": lambda x: np.cumsum(x) * x,
    "interp": lambda x: np.interp(x, [0.0, 0.5, 1.0], [1.0, 3.0, 2.0]) * x,
    "polyval": lambda x: np.polyval([1.0, -2.0, 0.5], x),
    "nan_to_num": lambda x: np.nan_to_num(x) * x,
    "linalg.norm": lambda x: np.linalg.norm(x) * x,
    "tensordot": lambda x: np.tensordot(x, x, axes=0),
    "einsum": lambda x: np.einsum(",->", x, x),
    "average": lambda x: np.average(x) * x,
    "std": lambda x: np.std(x) + x * x,
    "var": lambda x: np.var(x) + x * x,
    "median": lambda x: np.median(x) * x,
    "mean": lambda x: np.mean(x) * x,
    "dot": lambda x: np.dot(x, x),
    "real": lambda x: np.real(x) * x,
}


@pytest.mark.parametrize("name", sorted(FORMER_LEAKS))
def test_numpy_functions_record_adjfloats(name):
    fn = FORMER_LEAKS[name]
    x0, h = 0.7, 1e-6
    plain = lambda v: float(np.sum(fn(v)))       # numpy on plain floats
    expected = (plain(x0 + h) - plain(x0 - h)) / (2 * h)
    assert _derivative(lambda x: _scalar(fn(x)), x0) == pytest.approx(expected, rel=1e-7)


def test_trapezoid_of_a_scalar_is_refused_as_numpy_does():
    with pytest.raises(Exception):
        np.trapezoid(0.7)
    with pytest.raises(ValueError, match="crk.trapezoid: y must have at least one dimension"):
        np.trapezoid(crk.AdjFloat(0.7))


def test_unrecorded_numpy_functions_are_refused():
    x = crk.AdjFloat(0.7)
    for call in (lambda: np.cumprod(x), lambda: np.percentile(x, 50), lambda: np.gradient(x),
                 lambda: np.nanmax(x), lambda: np.nextafter(x, 1.0)):
        with pytest.raises(TypeError, match="is not recorded by crk"):
            call()


def test_python_abs_min_max():
    """abs is recorded; min/max return one of the objects (the first one at a tie)."""
    assert _derivative(lambda x: abs(x) * 3.0, -0.5) == -3.0
    assert _derivative(lambda x: max(x, 0.2) * 2.0, 0.7) == 2.0
    assert _derivative(lambda x: max(x, 0.9) * 2.0 + x, 0.7) == 1.0
    assert _derivative(lambda x: min(x, 0.9) * 2.0, 0.7) == 2.0
    with crk.Tape():
        x, y = crk.AdjFloat(0.5), crk.AdjFloat(0.5)
        assert max(x, y) is x and min(x, y) is x and max(y, x) is y
        assert min(x, 0.1) == 0.1 and type(min(x, 0.1)) is float


def test_zero_derivative_results_are_plain():
    """round/floor/sign... are piecewise constant: plain values, and J built with them has the
    right (almost everywhere) derivative."""
    x = crk.AdjFloat(2.7)
    for value in (round(x), round(x, 1), int(x), math.floor(x), math.trunc(x), x // 1.0,
                  np.floor(x), np.ceil(x), np.sign(x), np.rint(x), np.trunc(x), np.round(x),
                  np.around(x, 1), np.fix(x), np.floor_divide(x, 2.0), np.heaviside(x, 0.5)):
        assert not isinstance(value, OverloadedType), type(value)
    assert type(round(x)) is int and round(x, 1) == 2.7 and type(round(x, 1)) is float
    assert {np.floor, np.sign, np.round, np.rint, np.trunc, np.ceil} <= dispatch.ZERO_DERIVATIVE
    assert _derivative(lambda x: x * np.floor(x) + round(x) * x, 2.7) == 5.0


def test_explicit_exits():
    x = crk.AdjFloat(0.25)
    for value in (float(x), x.value, x.item()):
        assert type(value) is float and value == 0.25
    assert type(np.asarray(x)) is np.ndarray and np.asarray(x) == 0.25
    assert x.real is x and x.conjugate() is x and x.imag == 0.0
    assert np.conjugate(x) is x and np.real(x) is x


def test_lists_of_adjfloats_go_through_crk_array():
    """numpy converts a list itself (no dispatch): crk.array([...]) records it first."""
    with crk.Tape():
        a, b = crk.AdjFloat(0.5), crk.AdjFloat(2.0)
        J = np.sum(crk.array([a, b]) ** 2.0)
        g = crk.compute_gradient(J, [crk.Control(a), crk.Control(b)])
        assert [float(v) for v in g] == [1.0, 4.0]
