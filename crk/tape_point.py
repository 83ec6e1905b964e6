"""The point a tape stands at: at which control values its recorded values were last computed.

Owner: :mod:`crk.reduced`. Reduced functions are the only code that moves a tape to another
point (they set control values and replay), so they alone read and write this record; the tape
itself knows nothing of it. One :class:`TapePoint` per tape, shared by every reduced function on
that tape, found with :func:`point_of` (a weak table keyed by the tape, renewed when the tape is
cleared).

* ``token`` names who set the tape's values last: a reduced function that finds the token it
  was given at its last evaluation knows the values are still its own; anything else (another
  reduced function, a failed call) replaced or invalidated the token.
* ``control_defaults``: each control variable's recorded value. A reduced function evaluates
  with the controls of *other* reduced functions on the same tape at these values, so its
  result never depends on what another function did last.
"""
import weakref

_points = weakref.WeakKeyDictionary()     # tape -> TapePoint


class TapePoint:
    """The point of one tape (see the module docstring). Not collective."""

    __slots__ = ("token", "control_defaults", "version")

    def __init__(self, version):
        self.token = None
        self.control_defaults = {}      # control BlockVariable -> its recorded value
        self.version = version          # the tape's version this record belongs to

    def invalidate(self):
        """Nobody's values any more (an evaluation started, or a call failed half-way)."""
        self.token = object()
        return self.token

    def holds(self, token):
        """Whether the tape's values are still those set under ``token`` (None: the recorded
        values, untouched since recording)."""
        return self.token is token

    def add_defaults(self, control_bvs, values):
        """Record the recorded value of each control the first time it is seen."""
        for bv, value in zip(control_bvs, values):
            self.control_defaults.setdefault(bv, value)

    def reset_other_controls(self, own):
        """Set every recorded control not in ``own`` (a set of BlockVariables) back to its
        recorded value."""
        for bv, value in self.control_defaults.items():
            if bv not in own:
                bv.checkpoint = value


def point_of(tape):
    """The :class:`TapePoint` of ``tape`` (a fresh one after the tape was cleared)."""
    point = _points.get(tape)
    if point is None or point.version != tape._version:
        point = _points[tape] = TapePoint(tape._version)
    return point
