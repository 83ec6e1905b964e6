"""crk.parallel.configure_devices: GPU choice by node-local rank and memory shares.

There is no GPU here, so the GPU count is injected: the tests check the arithmetic, the node-local
split (under mpirun all ranks share one node), the environment each rank would set, the refusal
once JAX has started, and, in fresh subprocesses (a backend reads the settings only when it
starts), that the environment is really set and JAX then starts with it.
"""
import json
import math
import os
import subprocess
import sys

import pytest

from crk.parallel.devices import (DeviceChoice, choose, configure_devices, node_local_rank,
                                  plan_devices, ranks_per_gpu)

GPU_VARS = ("CUDA_VISIBLE_DEVICES", "XLA_PYTHON_CLIENT_MEM_FRACTION",
            "XLA_PYTHON_CLIENT_PREALLOCATE", "TF_FORCE_GPU_ALLOW_GROWTH")


def _fresh_env(**extra):
    """This environment without MPI launcher variables (the child is a serial program) and
    without GPU settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PMI_", "PMIX_", "HYDI_", "HYDRA_", "MPI_LOCAL", "OMPI_"))
           and k not in GPU_VARS}
    env.update(extra)
    return env


def _run(code, **extra):
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=_fresh_env(**extra), timeout=300)
    assert run.returncode == 0, run.stderr
    return run.stdout


# -- the arithmetic ------------------------------------------------------------------------------
@pytest.mark.parametrize("local_size,n_gpus,expected", [(1, 1, 1), (3, 2, 2), (4, 2, 2),
                                                         (5, 2, 3), (2, 4, 1), (8, 3, 3)])
def test_ranks_per_gpu(local_size, n_gpus, expected):
    assert ranks_per_gpu(local_size, n_gpus) == expected
    # no GPU gets more ranks than that when ranks go round-robin
    loads = [sum(1 for r in range(local_size) if r % n_gpus == g) for g in range(n_gpus)]
    assert max(loads) == expected


def test_choose_preallocated_share():
    c = choose(rank=7, local_rank=2, local_size=3, gpus=["0", "1"], backend="both",
               gpu_memory=16000)
    assert (c.gpu, c.ranks_per_gpu) == ("0", 2)
    assert c.mem_fraction == pytest.approx(0.45)
    assert c.env == {"CUDA_VISIBLE_DEVICES": "0", "XLA_PYTHON_CLIENT_MEM_FRACTION": "0.4500"}
    assert c.tf_memory_limit_mb == 7200
    assert c.describe() == "rank 7 (node-local 2 of 3) -> GPU 0, memory fraction 0.450"


def test_choose_on_demand_and_visible_ids():
    c = choose(0, 1, 4, gpus=["3", "5"], on_demand=True, backend="both", gpu_memory=16000)
    assert c.gpu == "5" and c.mem_fraction is None and c.tf_memory_limit_mb is None
    assert c.env == {"CUDA_VISIBLE_DEVICES": "5", "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
                     "TF_FORCE_GPU_ALLOW_GROWTH": "true"}
    assert c.describe().endswith("-> GPU 5, memory on demand")


def test_choose_user_fraction_and_backends():
    c = choose(0, 0, 4, gpus=["0"], mem_fraction=0.8, backend="jax", gpu_memory=1000)
    assert c.env["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.2000"
    assert c.tf_memory_limit_mb is None                      # TensorFlow not asked for
    t = choose(0, 0, 4, gpus=["0"], mem_fraction=0.8, backend="tensorflow", gpu_memory=1000)
    assert t.env == {"CUDA_VISIBLE_DEVICES": "0"} and t.tf_memory_limit_mb == 200


def test_choose_cpu_changes_nothing():
    c = choose(2, 2, 3, gpus=[])
    assert c == DeviceChoice(2, 2, 3, 0) and c.env == {} and c.gpu is None
    assert c.describe() == "rank 2 (node-local 2 of 3) -> CPU (no GPU found)"


# -- collective parts, under mpirun ----------------------------------------------------------------
@pytest.mark.mpi
def test_node_local_rank(comm):
    local_rank, local_size = node_local_rank(comm=comm)
    # mpirun on one machine: every rank is on the same node, ordered by world rank
    assert (local_rank, local_size) == (comm.rank, comm.size)


@pytest.mark.mpi
@pytest.mark.parametrize("n_gpus", [0, 1, 2, 3])
def test_plan_devices_over_ranks(comm, n_gpus):
    before = {k: os.environ.get(k) for k in GPU_VARS}
    choice = plan_devices(comm=comm, n_gpus=n_gpus)
    assert {k: os.environ.get(k) for k in GPU_VARS} == before      # planning changes nothing
    everyone = comm.allgather(choice)
    if n_gpus == 0:
        assert all(c.gpu is None and c.env == {} for c in everyone)
        return
    sharing = math.ceil(comm.size / n_gpus)
    for c in everyone:
        assert c.gpu == str(c.local_rank % n_gpus) and c.ranks_per_gpu == sharing
        assert c.mem_fraction == pytest.approx(0.9 / sharing)
        assert c.env["XLA_PYTHON_CLIENT_MEM_FRACTION"] == f"{0.9 / sharing:.4f}"
    per_gpu = [sum(1 for c in everyone if c.gpu == str(g)) for g in range(n_gpus)]
    assert max(per_gpu) <= sharing and sum(per_gpu) == comm.size
    # the shares of the ranks on one GPU never exceed 0.9 of it
    assert max(sum(c.mem_fraction for c in everyone if c.gpu == str(g))
               for g in range(n_gpus)) <= 0.9 + 1e-12


@pytest.mark.mpi
def test_refuses_after_jax_started(comm):
    jax = pytest.importorskip("jax")
    jax.devices()                                   # JAX is now initialised on every rank
    before = {k: os.environ.get(k) for k in GPU_VARS}
    with pytest.raises(RuntimeError, match=r"configure_devices\(\) must run before JAX "
                                           r"initialise\(s\) its devices"):
        configure_devices(comm=comm, backend="jax", n_gpus=2)
    assert {k: os.environ.get(k) for k in GPU_VARS} == before


@pytest.mark.mpi
def test_bad_arguments_raise_on_every_rank(comm):
    with pytest.raises(ValueError, match="argument 'backend' must be one of"):
        configure_devices(comm=comm, backend="torch")
    with pytest.raises(ValueError, match="argument 'n_gpus' must be a non-negative int"):
        configure_devices(comm=comm, n_gpus=-1)
    with pytest.raises(ValueError, match=r"argument 'mem_fraction' .* in \(0, 1\]"):
        plan_devices(comm=comm, n_gpus=1, mem_fraction=1.5)


# -- in a fresh process: the environment is set, printed, and JAX starts with it ----------------
_CONFIGURE = """
import json, os, sys
from crk.parallel import configure_devices
choice = configure_devices(n_gpus={n_gpus}, backend={backend!r}, on_demand={on_demand},
                           gpu_memory_mb=16000)
env = {{k: os.environ.get(k) for k in {vars!r}}}
import jax
jax.numpy.ones(2).block_until_ready()          # JAX starts (on CPU here) with these settings
print(json.dumps({{"env": env, "gpu": choice.gpu, "fraction": choice.mem_fraction,
                  "tf_limit": choice.tf_memory_limit_mb}}))
"""


@pytest.mark.parametrize("n_gpus,on_demand", [(2, False), (2, True), (0, False)])
def test_configure_devices_sets_environment(n_gpus, on_demand):
    pytest.importorskip("jax")
    out = _run(_CONFIGURE.format(n_gpus=n_gpus, backend="jax", on_demand=on_demand,
                                 vars=GPU_VARS)).splitlines()
    result = json.loads(out[-1])
    env = result["env"]
    if n_gpus == 0:
        assert out[0] == "crk: rank 0 (node-local 0 of 1) -> CPU (no GPU found)"
        assert all(v is None for v in env.values()) and result["gpu"] is None
    elif on_demand:
        assert out[0] == "crk: rank 0 (node-local 0 of 1) -> GPU 0, memory on demand"
        assert env["CUDA_VISIBLE_DEVICES"] == "0"
        assert env["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
        assert env["XLA_PYTHON_CLIENT_MEM_FRACTION"] is None
    else:
        assert out[0] == "crk: rank 0 (node-local 0 of 1) -> GPU 0, memory fraction 0.900"
        assert env["CUDA_VISIBLE_DEVICES"] == "0"
        assert env["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.9000"
        assert env["TF_FORCE_GPU_ALLOW_GROWTH"] is None


def test_configure_devices_tensorflow_settings():
    """TensorFlow: growth on demand, else a per-process limit in MB (applied when TF sees a
    GPU; there is none here, so it is only computed)."""
    pytest.importorskip("tensorflow")
    code = ("import json, os, sys\n"
            "from crk.parallel.devices import configure_devices\n"
            "a = configure_devices(n_gpus=1, backend='tensorflow', on_demand=True, verbose=False)\n"
            "grow = os.environ.get('TF_FORCE_GPU_ALLOW_GROWTH')\n"
            "b = configure_devices(n_gpus=1, backend='tensorflow', gpu_memory_mb=10000,\n"
            "                      mem_fraction=0.5, verbose=False)\n"
            "print(json.dumps([grow, b.tf_memory_limit_mb, b.tf_limit_applied,\n"
            "                  'XLA_PYTHON_CLIENT_MEM_FRACTION' in os.environ]))\n")
    grow, limit, applied, xla = json.loads(_run(code, TF_CPP_MIN_LOG_LEVEL="3").splitlines()[-1])
    assert (grow, limit, applied, xla) == ("true", 5000, False, False)


def test_refuses_when_started_in_fresh_process():
    pytest.importorskip("jax")
    code = ("import jax\njax.devices()\n"
            "from crk.parallel import configure_devices\n"
            "try:\n    configure_devices(n_gpus=1)\n"
            "except RuntimeError as e:\n    print('refused:', e)\n")
    assert "refused: configure_devices() must run before JAX" in _run(code)


def test_jax_device_round_robin_over_host_devices():
    """With 4 forced host devices, node-local ranks 0..5 take devices 0, 1, 2, 3, 0, 1, and an
    overloaded function given that device computes there."""
    pytest.importorskip("jax")
    code = ("import json, numpy as np, jax, crk\n"
            "from crk.parallel.devices import jax_device\n"
            "ids = [jax_device(local_rank=r).id for r in range(6)]\n"
            "dev = jax_device(local_rank=6)\n"
            "f = crk.overload_jax(lambda x: jax.numpy.sin(x) * 2.0, backend=dev, remat=False)\n"
            "with crk.Tape():\n"
            "    x = crk.array(np.linspace(0, 1, 5))\n"
            "    y = f(x)\n"
            "    res = f.last_call._residuals[1]\n"
            "where = {d.id for leaf in jax.tree_util.tree_leaves(res) for d in leaf.devices()}\n"
            "ok = bool(np.allclose(y.value, 2 * np.sin(x.value), rtol=1e-15))\n"
            "print(json.dumps([len(jax.devices()), ids, sorted(where), ok]))\n")
    out = _run(code, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    n, ids, where, ok = json.loads(out.splitlines()[-1])
    assert n == 4 and ids == [0, 1, 2, 3, 0, 1] and where == [2] and ok


_UNDER_MPIRUN = """
import json, os
from mpi4py import MPI
from crk.parallel import configure_devices
comm = MPI.COMM_WORLD
choice = configure_devices(comm=comm, backend={backend!r}, n_gpus=2, on_demand={on_demand},
                           gpu_memory_mb=16000, verbose=False)
import tensorflow as tf
tf.constant(1.0)                               # TensorFlow starts with these settings
env = {{k: os.environ.get(k) for k in {vars!r}}}
rows = comm.gather([comm.rank, choice.gpu, choice.ranks_per_gpu, choice.mem_fraction,
                    choice.tf_memory_limit_mb, env], root=0)
if comm.rank == 0:
    print(json.dumps(rows))
"""


@pytest.mark.parametrize("backend,on_demand", [("tensorflow", True), ("both", False)])
def test_configure_devices_under_mpirun_3(backend, on_demand):
    """Three fresh ranks (as a job starts: before any backend) share 2 injected GPUs: ranks
    0, 1, 2 take GPUs 0, 1, 0, two ranks per GPU, each its share of the memory, and TensorFlow
    then starts. (Launched from the serial suite: the MPI suites' processes have started JAX and
    TensorFlow already.)"""
    pytest.importorskip("tensorflow")
    mpirun = os.path.join(os.path.dirname(sys.executable), "mpirun")
    if not os.path.exists(mpirun):
        pytest.skip(f"no mpirun beside {sys.executable}")
    code = _UNDER_MPIRUN.format(backend=backend, on_demand=on_demand, vars=GPU_VARS)
    run = subprocess.run([mpirun, "-n", "3", sys.executable, "-c", code], capture_output=True,
                         text=True, env=_fresh_env(TF_CPP_MIN_LOG_LEVEL="3"), timeout=300)
    assert run.returncode == 0, run.stderr
    rows = json.loads(run.stdout.splitlines()[-1])
    assert [r[:3] for r in rows] == [[0, "0", 2], [1, "1", 2], [2, "0", 2]]
    for rank, gpu, _, fraction, tf_limit, env in rows:
        assert env["CUDA_VISIBLE_DEVICES"] == gpu
        if on_demand:
            assert env["TF_FORCE_GPU_ALLOW_GROWTH"] == "true" and tf_limit is None
        else:                           # 0.9 of a 16000 MB GPU shared by two ranks
            assert fraction == pytest.approx(0.45) and tf_limit == 7200
            assert env["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.4500"
            assert env["TF_FORCE_GPU_ALLOW_GROWTH"] is None
