"""Binding MPI ranks to GPUs before JAX or TensorFlow start: :func:`configure_devices`.

Ranks on the same node share its GPUs. Left alone, every rank's JAX or TensorFlow grabs GPU 0
and (JAX) preallocates 90% of its memory, so the second rank fails. One call at the top of the
program, before JAX/TF allocate anything, fixes both:

* the node-local rank L (of S ranks on the node) comes from a shared-memory split of the
  communicator (``comm.Split_type(MPI.COMM_TYPE_SHARED)``);
* rank L takes GPU ``L % n_gpus`` and sees only that one (``CUDA_VISIBLE_DEVICES``);
* each GPU is shared by at most ``ranks_per_gpu = ceil(S / n_gpus)`` ranks, so JAX preallocates
  ``mem_fraction / ranks_per_gpu`` of it (``XLA_PYTHON_CLIENT_MEM_FRACTION``; default
  mem_fraction 0.9, JAX's own default for one process) — or, with ``on_demand=True``, allocates
  as needed (``XLA_PYTHON_CLIENT_PREALLOCATE=false``); TensorFlow grows its memory on demand
  (``TF_FORCE_GPU_ALLOW_GROWTH=true``) or gets a per-process limit in MB.

These settings are read by the backends when they initialise, hence the "call first" rule: the
function refuses (on every rank) if JAX or TensorFlow already initialised their devices.
"""
import dataclasses
import math
import os
import shutil
import subprocess
import sys

from .collective import agree
from .comm import resolve_comm

DEFAULT_MEM_FRACTION = 0.9
_BACKENDS = ("jax", "tensorflow", "both")


@dataclasses.dataclass(frozen=True)
class DeviceChoice:
    """What :func:`configure_devices` chose for this rank.

    ``gpu`` is the physical GPU id (None: CPU). ``mem_fraction`` is JAX's per-process share of
    that GPU (None when allocating on demand or on CPU); ``tf_memory_limit_mb`` TensorFlow's
    per-process limit (None when unknown, on demand or on CPU). ``env`` lists the environment
    variables that were set.
    """
    rank: int
    local_rank: int
    local_size: int
    n_gpus: int
    gpu: object = None
    ranks_per_gpu: int = 0
    mem_fraction: float = None
    on_demand: bool = False
    tf_memory_limit_mb: int = None
    tf_limit_applied: bool = False
    env: dict = dataclasses.field(default_factory=dict)

    def describe(self):
        where = f"rank {self.rank} (node-local {self.local_rank} of {self.local_size})"
        if self.gpu is None:
            return f"{where} -> CPU (no GPU found)"
        memory = ("memory on demand" if self.on_demand
                  else f"memory fraction {self.mem_fraction:.3f}")
        return f"{where} -> GPU {self.gpu}, {memory}"


# -- what is already running ---------------------------------------------------------------------
def jax_initialised():
    """True when JAX in this process has initialised its backends (devices are bound)."""
    if "jax" not in sys.modules:
        return False
    try:   # JAX has no public query for this; the private one is stable since 0.4
        from jax._src import xla_bridge
        return bool(xla_bridge.backends_are_initialized())
    except (ImportError, AttributeError):   # pragma: no cover - other JAX versions
        return False


def tensorflow_initialised():
    """True when TensorFlow in this process has initialised its runtime (devices are bound)."""
    if "tensorflow" not in sys.modules:
        return False
    try:
        from tensorflow.python.eager import context
        return bool(context.context()._initialized)
    except (ImportError, AttributeError):   # pragma: no cover - other TF versions
        return False


# -- what the node has ---------------------------------------------------------------------------
def visible_gpus():
    """Physical GPU ids this process may use: from CUDA_VISIBLE_DEVICES, else ``nvidia-smi -L``.

    Not collective; an empty list when there are none.
    """
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        ids = [s.strip() for s in env.split(",") if s.strip()]
        # CUDA stops at the first invalid entry; "-1" or "" hides every GPU
        valid = []
        for s in ids:
            if s.startswith("-"):
                break
            valid.append(s)
        return valid
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        listing = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return []
    lines = [line for line in listing.stdout.splitlines() if line.startswith("GPU ")]
    return [str(k) for k in range(len(lines))]


def query_gpu_memory_mb(gpu):
    """Total memory of physical GPU ``gpu`` in MB from nvidia-smi, or None if unknown."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        query = subprocess.run([smi, "--query-gpu=memory.total", "--format=csv,noheader,nounits",
                                "-i", str(gpu)], capture_output=True, text=True, timeout=30)
        return int(float(query.stdout.strip().splitlines()[0]))
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def node_local_rank(*, comm=None):
    """(local rank, local size): this rank's position among the ranks on its node.

    Collective over ``comm`` (default COMM_WORLD).
    """
    from mpi4py import MPI
    comm = resolve_comm(comm, "node_local_rank()")
    local = comm.Split_type(MPI.COMM_TYPE_SHARED, key=comm.rank)
    try:
        return local.rank, local.size
    finally:
        local.Free()


# -- the arithmetic ------------------------------------------------------------------------------
def ranks_per_gpu(local_size, n_gpus):
    """The most ranks that share one GPU when ``local_size`` ranks go round-robin."""
    return math.ceil(local_size / n_gpus)


def choose(rank, local_rank, local_size, gpus, mem_fraction=None, on_demand=False,
           gpu_memory=None, backend="jax"):
    """The :class:`DeviceChoice` for one rank, and the environment it needs (pure arithmetic).

    ``gpus``: the physical GPU ids visible on the node (a list; empty for CPU).
    ``gpu_memory``: the GPU's memory in MB for TensorFlow's per-process limit (None: unknown).
    """
    n_gpus = len(gpus)
    if n_gpus == 0:
        return DeviceChoice(rank, local_rank, local_size, 0)
    total = DEFAULT_MEM_FRACTION if mem_fraction is None else float(mem_fraction)
    sharing = ranks_per_gpu(local_size, n_gpus)
    gpu = gpus[local_rank % n_gpus]
    env = {"CUDA_VISIBLE_DEVICES": str(gpu)}
    fraction = None if on_demand else total / sharing
    limit = None
    if backend in ("jax", "both"):
        if on_demand:
            env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
        else:
            env["XLA_PYTHON_CLIENT_MEM_FRACTION"] = f"{fraction:.4f}"
    if backend in ("tensorflow", "both"):
        if on_demand:
            env["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
        elif gpu_memory is not None:
            limit = int(gpu_memory * fraction)
    return DeviceChoice(rank, local_rank, local_size, n_gpus, gpu, sharing, fraction,
                        bool(on_demand), limit, False, env)


def _apply_tensorflow_limit(limit_mb):
    """Give TensorFlow's (only visible) GPU a memory limit; False if TF/GPU is absent."""
    import importlib.util
    if limit_mb is None or importlib.util.find_spec("tensorflow") is None:
        return False
    import tensorflow as tf
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return False
    tf.config.set_logical_device_configuration(
        gpus[0], [tf.config.LogicalDeviceConfiguration(memory_limit=limit_mb)])
    return True


def _check_arguments(backend, n_gpus, mem_fraction):
    if backend not in _BACKENDS:
        raise ValueError(f"configure_devices(): argument 'backend' must be one of {_BACKENDS}, "
                         f"got {backend!r}")
    if n_gpus is not None and (isinstance(n_gpus, bool) or not isinstance(n_gpus, int)
                               or n_gpus < 0):
        raise ValueError(f"configure_devices(): argument 'n_gpus' must be a non-negative int "
                         f"or None (detect), got {n_gpus!r}")
    if mem_fraction is not None and not 0.0 < float(mem_fraction) <= 1.0:
        raise ValueError(f"configure_devices(): argument 'mem_fraction' is the share of each "
                         f"GPU's memory all its ranks may use together, in (0, 1]; got "
                         f"{mem_fraction!r}")


def plan_devices(*, comm=None, backend="jax", n_gpus=None, mem_fraction=None, on_demand=False,
                 gpu_memory_mb=None):
    """The :class:`DeviceChoice` of every rank, without changing anything. Collective.

    Arguments as for :func:`configure_devices`.
    """
    comm = resolve_comm(comm, "plan_devices()")
    error = None
    try:
        _check_arguments(backend, n_gpus, mem_fraction)
    except Exception as e:   # raise on every rank, not only here
        error = e
    agree(comm, error, where="configure_devices()")
    local_rank, local_size = node_local_rank(comm=comm)
    visible = visible_gpus() if n_gpus is None or "CUDA_VISIBLE_DEVICES" in os.environ else []
    if n_gpus is None:
        gpus = visible
    else:   # injected count: the first n visible ids, else ids 0 .. n-1
        gpus = visible[:n_gpus] if len(visible) >= n_gpus else [str(k) for k in range(n_gpus)]
    memory = gpu_memory_mb
    if memory is None and gpus and not on_demand and backend != "jax":
        memory = query_gpu_memory_mb(gpus[local_rank % len(gpus)])
    return choose(comm.rank, local_rank, local_size, gpus, mem_fraction, on_demand, memory,
                  backend)


def configure_devices(*, comm=None, backend="jax", n_gpus=None, mem_fraction=None, on_demand=False,
                      verbose=True, gpu_memory_mb=None):
    """Bind this rank to a GPU by node-local rank and limit its memory share. Collective.

    Call once, on every rank of ``comm`` (default COMM_WORLD), before JAX or TensorFlow
    allocate anything. ``backend``: "jax", "tensorflow" or "both" (which settings to make).
    ``n_gpus``: GPUs per node (default: detected from CUDA_VISIBLE_DEVICES or ``nvidia-smi -L``;
    0 means CPU only: nothing GPU-related is changed). ``mem_fraction``: share of each GPU's
    memory its ranks may use together (default 0.9); each rank gets ``mem_fraction /
    ranks_per_gpu``. ``on_demand``: allocate as needed instead of preallocating.
    ``gpu_memory_mb``: GPU memory for TensorFlow's per-process limit (default: nvidia-smi),
    applied with ``tf.config.set_logical_device_configuration`` when TensorFlow is installed.
    With ``verbose`` each rank prints what it took. Returns this rank's :class:`DeviceChoice`.

    Raises (on every rank) ValueError for bad arguments and RuntimeError if on any rank JAX or
    TensorFlow (as selected by ``backend``) already initialised its devices.
    """
    comm = resolve_comm(comm, "configure_devices()")
    error = None
    try:
        _check_arguments(backend, n_gpus, mem_fraction)
        started = [name for name, check, used in
                   (("JAX", jax_initialised, backend in ("jax", "both")),
                    ("TensorFlow", tensorflow_initialised, backend in ("tensorflow", "both")))
                   if used and check()]
        if started:
            raise RuntimeError(
                f"configure_devices() must run before {' and '.join(started)} initialise(s) "
                f"its devices, but in this process that has already happened (something "
                f"created an array, ran a computation or listed devices). The GPU choice and "
                f"memory limits are read only at initialisation: call "
                f"crk.parallel.configure_devices() at the top of the program.")
    except Exception as e:   # raise on every rank, not only here
        error = e
    agree(comm, error, where="configure_devices()")
    choice = plan_devices(comm=comm, backend=backend, n_gpus=n_gpus, mem_fraction=mem_fraction,
                          on_demand=on_demand, gpu_memory_mb=gpu_memory_mb)
    os.environ.update(choice.env)
    if choice.tf_memory_limit_mb is not None:
        choice = dataclasses.replace(
            choice, tf_limit_applied=_apply_tensorflow_limit(choice.tf_memory_limit_mb))
    if verbose:
        print(f"crk: {choice.describe()}", flush=True)
    return choice


def jax_device(local_rank=None, *, comm=None):
    """The JAX device this rank should use: ``jax.devices()[local_rank % len(jax.devices())]``.

    After :func:`configure_devices` each rank sees one GPU, so this is that GPU. Without it
    (e.g. several host devices forced by ``XLA_FLAGS=--xla_force_host_platform_device_count``)
    ranks go round-robin over the visible devices. Pass it as ``backend=`` to
    :func:`crk.overload_jax`. Collective over ``comm`` when ``local_rank`` is not given.
    """
    if local_rank is None:
        local_rank, _ = node_local_rank(comm=comm)
    import jax
    devices = jax.devices()
    return devices[local_rank % len(devices)]
