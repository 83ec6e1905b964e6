"""Taylor-check helpers shared by the backend and point-map tests: plain values of crk values,
random directions shaped like the controls, and the rate assertions."""
import numpy as np

#: the smallest accepted first-order (R1) and second-order (R2) Taylor rates
R1_RATE, R2_RATE = 1.9, 2.9


def plain(value):
    """The float64 array of a crk value (its checkpoint) or of a plain value."""
    return np.asarray(value._ad_create_checkpoint() if hasattr(value, "_ad_create_checkpoint")
                      else value, dtype=np.float64)


def assert_taylor(d, r1=R1_RATE, r2=R2_RATE):
    """``d`` (a :func:`crk.taylor_to_dict` result) shows rates ≥ ``r1`` (R1) and ≥ ``r2`` (R2)."""
    assert min(d["R1"]["Rate"]) >= r1, d["R1"]
    assert min(d["R2"]["Rate"]) >= r2, d["R2"]


def directions(values, seed, scale=1.0):
    """One standard-normal direction per value (a float for a scalar), times ``scale``, from
    ``seed``."""
    rng = np.random.default_rng(seed)
    return [scale * rng.standard_normal(np.shape(plain(v))) if np.ndim(plain(v))
            else float(scale * rng.standard_normal()) for v in values]
