"""Control: a recorded value declared as an input the reduced function varies."""
import numpy as np

from .lifetime import pin
from .overloaded_type import OverloadedType, plain_value
from .parallel.collective import sum_over_ranks


class Control:
    """Mark a recorded value (``crk.AdjFloat``, ``crk.ndarray``, a backend value) as a control.

    The control keeps the value's BlockVariable; reduced functions set its checkpoint to new
    values. Replicated controls must be given identical values on every rank.
    """

    def __init__(self, control):
        if isinstance(control, Control):
            control = control.control
        if not isinstance(control, OverloadedType):
            raise TypeError(
                f"Control(): expected a recorded value (crk.AdjFloat, crk.ndarray, ...), got "
                f"{type(control).__name__}. Create it with crk.AdjFloat(...) or crk.array(...) "
                f"before computing with it, so the computation is recorded from it.")
        self.control = control
        bv = self.block_variable = control.block_variable
        value = control._ad_create_checkpoint()
        pin(bv)                        # a control's value is the point the tape is at
        bv.reattach(value)             # dropped or freed: the object still has it
        self._shape = np.shape(value)

    # pyadjoint names
    def data(self):
        """The overloaded object this control was made from."""
        return self.control

    def tape_value(self):
        """The value the tape currently holds for this control (a new overloaded object)."""
        return self.wrap(self.block_variable.checkpoint)

    def update(self, value):
        """Set the tape's value of this control (without re-running anything).

        Reduced functions always re-evaluate at their own point before a derivative, so to move
        a reduced function to a new point call it: ``rf(new_values)``.
        """
        self.block_variable.checkpoint = self.plain(value, "value")

    # value helpers used by reduced functions, verification and optimisers ------------------
    @property
    def distributed(self):
        return self.control._ad_distributed

    @property
    def comm(self):
        return self.control._ad_comm

    @property
    def scalar(self):
        """True for a scalar (AdjFloat-like) control."""
        return isinstance(self.control, float)

    @property
    def shape(self):
        """Shape of this rank's piece."""
        return self._shape

    def plain(self, value, what="value"):
        """``value`` as the plain value the tape holds, checked against this control's shape."""
        if isinstance(value, Control):
            value = value.block_variable.checkpoint
        value = plain_value(value)
        if self.scalar:
            try:
                return float(value)
            except (TypeError, ValueError):
                raise TypeError(f"{what}: expected a float for a scalar control, got "
                                f"{type(value).__name__}") from None
        arr = np.asarray(value, dtype=np.float64)
        if arr.shape != self._shape:
            kind = "this rank's piece of the distributed control" if self.distributed \
                else "the control"
            raise ValueError(f"{what}: expected shape {self._shape} ({kind}), got {arr.shape}")
        return arr

    def wrap(self, value):
        """A new overloaded object of the control's type holding plain ``value``."""
        if value is None:
            value = 0.0 if self.scalar else np.zeros(self._shape)
        return self.control._ad_from_value(value)

    def inner(self, a, b):
        """Inner product of two plain values in this control's space (global if distributed).

        Collective when the control is distributed.
        """
        local = float(np.vdot(a, b)) if np.ndim(a) else float(a) * float(b)
        return sum_over_ranks(local, self.comm) if self.distributed else local

    def __repr__(self):
        return f"Control({self.control!r})"
