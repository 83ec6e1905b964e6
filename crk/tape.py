"""The tape: an ordered record of Blocks, and the context saying which tape records.

The working tape and the annotation switch are context variables, so threads and asyncio tasks
each see their own, and ``with Tape() as tape:`` / ``with stop_annotating():`` nest cleanly.
Creating a Tape initialises nothing (no MPI, no backends).
"""
import contextvars

_working_tape = contextvars.ContextVar("crk_working_tape", default=None)
_annotating = contextvars.ContextVar("crk_annotating", default=True)


class Tape:
    """An ordered record of the Blocks of one computation.

    ``comm`` (keyword-only) is the mpi4py communicator whose ranks all record this tape (SPMD;
    default COMM_WORLD, resolved on first use). Tape sweeps agree on failure over it, so an
    exception on one rank raises on all ranks. ``checkpointing`` / ``directory``: see
    :meth:`enable_checkpointing`. ``check_replicated=True`` (default: the environment variable
    ``CRK_CHECK_REPLICATED``) checks after every recorded operation that its replicated values
    are identical on all ranks (collective; a debugging aid, an observer from
    crk.distributed.replication_check).

    Use as a context manager to make it the working tape::

        with crk.Tape() as tape:
            ...   # operations recorded on `tape`

    Observers: objects told of every recorded block (the one hook point for "a block was
    recorded"). An observer has a method ``block_added(block, index)`` (not collective; it must
    not record on this tape) and is registered with :meth:`add_observer`. ``observers`` is an
    immutable tuple, empty unless someone registered, so recording pays one truth test for it.
    The time-loop machinery (:mod:`crk.checkpointing`) is such an observer.
    """

    def __init__(self, *, comm=None, checkpointing=None, directory=None, check_replicated=None):
        self._blocks = []
        if comm is not None:
            from .parallel.comm import check_comm
            check_comm(comm, "crk.Tape()")
        self._comm = comm
        self._tokens = []
        self._version = 0          # bumped whenever blocks are removed; plans check it
        self.observers = ()
        # The crk.checkpointing.CheckpointManager of this tape's time loop (None: no loop).
        self.checkpoint_manager = None
        if checkpointing is not None or directory is not None:
            self.enable_checkpointing(checkpointing, directory=directory)
        # Debug switch: compare replicated values across ranks after every recorded block
        # (an observer). Default: the CRK_CHECK_REPLICATED environment variable.
        from .distributed.replication_check import ReplicationCheck, enabled_by_environment
        if check_replicated is None:
            check_replicated = enabled_by_environment()
        self.check_replicated = bool(check_replicated)
        if self.check_replicated:
            self.add_observer(ReplicationCheck(self))

    # -- recording ---------------------------------------------------------------------------
    def add_block(self, block):
        """Append ``block`` (already wired to its dependencies and outputs) and tell the
        observers. Not collective. (crk.recording's hot path does the same inline: keep the two
        in step.)"""
        self._blocks.append(block)
        if self.observers:
            self.notify_observers(block, len(self._blocks) - 1)

    def notify_observers(self, block, index):
        """Tell every observer that ``block`` was recorded at position ``index``."""
        for observer in self.observers:
            observer.block_added(block, index)

    def add_observer(self, observer):
        """Register ``observer`` (see the class docstring). Not collective."""
        if not callable(getattr(observer, "block_added", None)):
            raise TypeError(f"Tape.add_observer(): expected an object with a method "
                            f"block_added(block, index), got {type(observer).__name__}")
        self.observers = self.observers + (observer,)

    def remove_observer(self, observer):
        """Unregister ``observer`` (nothing happens if it is not registered)."""
        self.observers = tuple(o for o in self.observers if o is not observer)

    def get_blocks(self):
        """The recorded blocks, in recording order (a list; do not modify)."""
        return self._blocks

    def __len__(self):
        return len(self._blocks)

    def clear_tape(self):
        """Forget every block (and the time loop's record, keeping its schedule). Not
        collective."""
        from .lifetime import pin
        for block in self._blocks:          # no block can recompute these values any more
            for bv in block._outputs:
                pin(bv)
        self._blocks = []
        self._version += 1
        manager, self.checkpoint_manager = self.checkpoint_manager, None
        if manager is not None:
            manager.close()
            self.checkpoint_manager = manager.renewed()

    clear = clear_tape

    @property
    def comm(self):
        from .parallel.comm import resolve_comm
        if self._comm is None:
            self._comm = resolve_comm(None)
        return self._comm

    # -- time loops (crk.checkpointing) ------------------------------------------------------
    def enable_checkpointing(self, schedule, directory=None):
        """Choose the checkpoint schedule for the time loop this tape will record.

        ``schedule``: a :mod:`crk.checkpointing` schedule (Revolve, Multistage, Mixed, Online;
        None or StoreAll keeps everything). ``directory``: where this process writes disk
        snapshots (default: the system temporary directory); checked for writability now.
        Must be called before the loop starts recording. Not collective.
        """
        from .checkpointing.manager import CheckpointManager
        if self.checkpoint_manager is not None:
            self.checkpoint_manager.check_not_started()
            self.checkpoint_manager.close()
            self.checkpoint_manager = None
        self.checkpoint_manager = CheckpointManager(self, schedule, directory)

    def timesteps(self, n=None):
        """Iterate over the steps of a time loop, marking each step on the tape.

        ``for step in tape.timesteps(n): ...`` records ``n`` steps; with ``n=None`` the loop length
        is open and the loop ends when the user breaks out of it (online checkpointing).
        """
        if self.checkpoint_manager is None:
            from .checkpointing.manager import CheckpointManager
            self.checkpoint_manager = CheckpointManager(self, None)
        return self.checkpoint_manager.steps(n)

    def is_working_tape(self):
        """Whether this tape is the working tape of the current context."""
        return _working_tape.get() is self

    # -- working-tape context ----------------------------------------------------------------
    def __enter__(self):
        self._tokens.append(_working_tape.set(self))
        return self

    def __exit__(self, *exc):
        _working_tape.reset(self._tokens.pop())
        return False

    def __repr__(self):
        return f"<crk.Tape with {len(self._blocks)} blocks>"


def get_working_tape():
    """The tape operations are recorded on in the current context (created on first use)."""
    tape = _working_tape.get()
    if tape is None:
        tape = Tape()
        _working_tape.set(tape)
    return tape


class _Restore:
    """Context manager returned by set_working_tape/pause helpers: restores on exit."""

    def __init__(self, var, token, value=None):
        self._var, self._token, self._value = var, token, value

    def __enter__(self):
        return self._value

    def __exit__(self, *exc):
        self._var.reset(self._token)
        return False


def set_working_tape(tape=None):
    """Make ``tape`` (a new Tape if None) the working tape.

    Returns a context manager: ``with set_working_tape(t):`` restores the previous tape on exit.
    """
    tape = Tape() if tape is None else tape
    if not isinstance(tape, Tape):
        raise TypeError(f"set_working_tape(): expected a crk.Tape, got {type(tape).__name__}")
    return _Restore(_working_tape, _working_tape.set(tape), tape)


def annotating():
    """True when operations are currently being recorded."""
    return _annotating.get()


class stop_annotating:
    """``with stop_annotating():`` — nothing inside is recorded on any tape."""

    def __enter__(self):
        self._token = _annotating.set(False)

    def __exit__(self, *exc):
        _annotating.reset(self._token)
        return False


def pause_annotation():
    """Stop recording until :func:`continue_annotation` (prefer ``with stop_annotating():``)."""
    _annotating.set(False)


def continue_annotation():
    """Resume recording after :func:`pause_annotation`."""
    _annotating.set(True)
