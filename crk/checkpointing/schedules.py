"""crk's checkpoint schedules: small specs that create fresh action iterators.

A schedule is a sequence of actions (forward n0→n1, store, restore, reverse n1→n0), separate from
the executor that carries them out (:mod:`crk.checkpointing.executor`). The action sequences come
from the ``checkpoint_schedules`` package (the implementation Firedrake uses); a spec here holds
the parameters, checks them once, and makes a new iterator for every forward/reverse cycle,
because crk re-runs the forward whenever the controls change.
"""
import warnings


def _positive_int(value, name, owner, minimum=1):
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{owner}: argument '{name}' must be an integer >= {minimum}, "
                         f"got {value!r}")
    return value


class Schedule:
    """Base of crk schedule specs. ``n_steps`` is None for online schedules."""

    n_steps = None
    uses_disk = False

    def create(self):
        """A fresh ``checkpoint_schedules`` iterator for one forward/reverse cycle."""
        raise NotImplementedError

    def check_steps(self, n):
        """Raise ValueError unless a loop of ``n`` steps (None: unknown) fits this schedule."""
        if self.n_steps is None:
            return
        if n is None:
            raise ValueError(f"{self!r} is made for {self.n_steps} steps: pass the number of "
                             f"steps, tape.timesteps({self.n_steps}), or use crk.checkpointing."
                             f"Online for loops of unknown length")
        if n != self.n_steps:
            raise ValueError(f"{self!r} is made for {self.n_steps} steps but the loop has {n} "
                             f"(tape.timesteps({n})); make the schedule for {n} steps")


class StoreAll(Schedule):
    """Keep every value in memory (the default: no recomputation)."""

    def __repr__(self):
        return "StoreAll()"


class Revolve(Schedule):
    """Binomial checkpointing (Griewank–Walther revolve): ``snapshots`` step states kept in
    memory, the fewest possible forward recomputations for ``n_steps`` steps."""

    def __init__(self, n_steps, snapshots):
        self.n_steps = _positive_int(n_steps, "n_steps", "Revolve")
        self.snapshots = _positive_int(snapshots, "snapshots", "Revolve")

    def create(self):
        from checkpoint_schedules import MultistageCheckpointSchedule
        return MultistageCheckpointSchedule(self.n_steps, self.snapshots, 0,
                                            trajectory="revolve")

    def __repr__(self):
        return f"Revolve({self.n_steps}, snapshots={self.snapshots})"


class Multistage(Schedule):
    """Binomial checkpointing over memory and disk (Stumm–Walther multistage):
    ``snapshots_in_ram`` states in memory and ``snapshots_on_disk`` in per-rank files."""

    def __init__(self, n_steps, snapshots_in_ram, snapshots_on_disk):
        self.n_steps = _positive_int(n_steps, "n_steps", "Multistage")
        self.snapshots_in_ram = _positive_int(snapshots_in_ram, "snapshots_in_ram",
                                              "Multistage", minimum=0)
        self.snapshots_on_disk = _positive_int(snapshots_on_disk, "snapshots_on_disk",
                                               "Multistage", minimum=0)
        if snapshots_in_ram + snapshots_on_disk < 1:
            raise ValueError("Multistage: at least one snapshot (in RAM or on disk) is needed")
        self.uses_disk = snapshots_on_disk > 0

    def create(self):
        from checkpoint_schedules import MultistageCheckpointSchedule
        return MultistageCheckpointSchedule(self.n_steps, self.snapshots_in_ram,
                                            self.snapshots_on_disk, trajectory="revolve")

    def __repr__(self):
        return (f"Multistage({self.n_steps}, snapshots_in_ram={self.snapshots_in_ram}, "
                f"snapshots_on_disk={self.snapshots_on_disk})")


class Mixed(Schedule):
    """Mixed checkpointing (Maddison, J. Comput. Sci. 82, 2024): ``snapshots`` storage units,
    each holding either a step's forward restart state or what the adjoint of one step reads
    (its adjoint dependencies), whichever saves more recomputation; ``storage``: "ram" or
    "disk". It assumes both kinds of data have about the same size (true for a one-block step
    of a PDE state); for 1000 steps and 10 units it runs 3921 forward steps where
    :class:`Revolve` runs 4636."""

    def __init__(self, n_steps, snapshots, storage="ram"):
        self.n_steps = _positive_int(n_steps, "n_steps", "Mixed")
        self.snapshots = _positive_int(snapshots, "snapshots", "Mixed")
        if storage not in ("ram", "disk"):
            raise ValueError(f"Mixed: argument 'storage' must be 'ram' or 'disk', got "
                             f"{storage!r}")
        self.storage = storage
        self.uses_disk = storage == "disk"

    def create(self):
        from checkpoint_schedules import MixedCheckpointSchedule, StorageType
        storage = StorageType.RAM if self.storage == "ram" else StorageType.DISK
        return _QuietStart(MixedCheckpointSchedule(self.n_steps, self.snapshots,
                                                   storage=storage))

    def __repr__(self):
        return f"Mixed({self.n_steps}, snapshots={self.snapshots}, storage={self.storage!r})"


class _QuietStart:
    """A checkpoint_schedules schedule whose iteration starts without the warning that numba
    is missing (MixedCheckpointSchedule then tabulates in Python, which is what crk wants:
    numba is no dependency of crk)."""

    def __init__(self, schedule):
        self.schedule = schedule
        self.max_n = schedule.max_n

    def __iter__(self):
        actions = iter(self.schedule)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Numba not available", RuntimeWarning)
            first = next(actions)
        yield first
        yield from actions


class Online(Schedule):
    """For loops whose length is not known in advance: the state every ``period`` steps goes to
    disk during the forward, and the adjoint between two of those uses binomial checkpointing
    with ``snapshots`` extra states (in memory, or on disk with ``storage="disk"``)."""

    uses_disk = True

    def __init__(self, period, snapshots, storage="ram"):
        self.period = _positive_int(period, "period", "Online")
        self.snapshots = _positive_int(snapshots, "snapshots", "Online", minimum=0)
        if storage not in ("ram", "disk"):
            raise ValueError(f"Online: argument 'storage' must be 'ram' or 'disk', got "
                             f"{storage!r}")
        self.storage = storage

    def create(self):
        from checkpoint_schedules import StorageType, TwoLevelCheckpointSchedule
        storage = StorageType.RAM if self.storage == "ram" else StorageType.DISK
        return TwoLevelCheckpointSchedule(self.period, self.snapshots,
                                          binomial_storage=storage,
                                          binomial_trajectory="revolve")

    def __repr__(self):
        return f"Online(period={self.period}, snapshots={self.snapshots}, " \
               f"storage={self.storage!r})"


def as_schedule(schedule):
    """Accept a crk schedule spec, or None for store-all."""
    if schedule is None:
        return StoreAll()
    if isinstance(schedule, Schedule):
        return schedule
    raise TypeError(f"checkpointing: expected a crk.checkpointing schedule (Revolve, "
                    f"Multistage, Mixed, Online or StoreAll), got {type(schedule).__name__}")
