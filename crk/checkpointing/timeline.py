"""The recorded structure of a tape's time loop: which blocks belong to which step.

A :class:`Timeline` is filled while the loop records (by the
:class:`~crk.checkpointing.manager.CheckpointManager`) and read afterwards by executors. It
holds no values and does no checkpointing.
"""
import bisect


class Timeline:
    """The steps of one time loop on a tape. Not collective.

    ``step_starts``: tape index of each step's first block; ``loop_start`` / ``loop_end``: tape
    indices of the loop's first block and one past its last; ``n_steps``: steps recorded (set
    when the loop ends); ``expected_steps``: the count given to ``tape.timesteps`` (None:
    open-ended); ``current``: the step being recorded (then the last one); ``step_of``: the step
    that produced each loop-produced BlockVariable.
    """

    def __init__(self):
        self.step_starts = []
        self.loop_start = None
        self.loop_end = None
        self.n_steps = None
        self.expected_steps = None
        self.started = False
        self.finished = False
        self.current = None
        self.step_of = {}

    def start(self, tape_index, expected_steps):
        self.started = True
        self.expected_steps = expected_steps
        self.loop_start = tape_index

    def start_step(self, k, tape_index):
        self.step_starts.append(tape_index)
        self.current = k

    def produced(self, block, k):
        """Record that the outputs of ``block`` were produced in step ``k``."""
        for out in block._outputs:
            self.step_of[out] = k

    def end(self, n_steps, tape_index):
        self.loop_end = tape_index
        self.n_steps = n_steps
        self.finished = True

    def step_index(self, tape_index):
        """The step of the block at ``tape_index`` (-1 before the loop, n_steps after)."""
        if self.loop_start is None or tape_index < self.loop_start:
            return -1
        if self.loop_end is not None and tape_index >= self.loop_end:
            return self.n_steps
        return bisect.bisect_right(self.step_starts, tape_index) - 1
