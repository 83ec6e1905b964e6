"""One-shot derivative drivers with pyadjoint's names, on the tape's current values."""
from .reduced import ReducedFunctional


def compute_gradient(J, m, options=None, tape=None, adj_value=1.0, riesz_map=None):
    """dJ/dm for the recorded scalar ``J`` and control(s) ``m``, at the recorded point.

    Returns the l2 derivative per control (single or list, as ``m`` was given). Collective.
    """
    rf = ReducedFunctional(J, m, tape=tape)
    return rf.derivative(adj_input=adj_value, options=options, riesz_map=riesz_map)


def compute_hessian(J, m, m_dot, options=None, tape=None):
    """The Hessian action d²J/dm² [m_dot] at the recorded point. Collective."""
    return ReducedFunctional(J, m, tape=tape).hessian(m_dot, options=options)


def compute_tlm(J, m, m_dot, tape=None):
    """The directional derivative dJ/dm · m_dot at the recorded point. Collective."""
    return ReducedFunctional(J, m, tape=tape).tlm(m_dot)
