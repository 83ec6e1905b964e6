"""Shared helpers of the benchmark scripts: timing, peak-memory measurement, worker processes.

Peak memory of one step is measured inside a fresh worker process as
``ru_maxrss after the step - RSS just before it``. To measure a step that follows a warm-up
(e.g. after JAX/TF compilation) the kernel's high-water mark is first reset to the current RSS
by writing ``5`` to ``/proc/self/clear_refs`` (Linux ≥ 4.0), so the warm-up's own peak does not
hide the step's. Workers run with one thread per library and, for memory runs, with glibc's
mmap threshold fixed so freed large arrays go back to the OS instead of being reused silently
(which would make a later step look cheaper than it is).
"""
import json
import os
import resource
import statistics
import subprocess
import sys
import time

#: Environment of every worker: one thread everywhere, so rows are comparable on a shared machine.
SINGLE_THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
    "JAX_PLATFORMS": "cpu",
}

#: Extra environment of memory workers: large blocks are always mmapped and unmapped on free.
FIXED_MALLOC_ENV = {
    "MALLOC_MMAP_THRESHOLD_": "131072",
    "MALLOC_TRIM_THRESHOLD_": "131072",
}

_KIB = 1024


def _status_kib(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def rss_bytes():
    """Current resident set size of this process."""
    return _status_kib("VmRSS") * _KIB


def maxrss_bytes():
    """``getrusage(RUSAGE_SELF).ru_maxrss`` (KiB on Linux) in bytes."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * _KIB


def hwm_bytes():
    """The address space's RSS high-water mark (VmHWM), the quantity clear_refs resets."""
    return _status_kib("VmHWM") * _KIB


def reset_peak():
    """Reset the RSS high-water mark to the current RSS; False if the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return hwm_bytes() <= rss_bytes() + 4 * 2**20


def measure_step(step):
    """Run ``step()`` once and return (result, figures) with its peak memory.

    The high-water mark is reset first (:func:`reset_peak`), so earlier peaks (building the data,
    a warm-up call) do not hide the step's. figures: ``rss_before`` (bytes), ``peak`` (ru_maxrss
    after the step, bytes), ``extra`` (peak - rss_before), ``seconds``, ``reset`` (whether the
    reset worked) and ``source``: "ru_maxrss", or "VmHWM" when ru_maxrss still reported an older,
    higher peak after the reset (the kernel keeps the mark of threads that exited before it),
    in which case the address space's own (reset) mark is used.
    """
    reset = reset_peak()
    rss_before = rss_bytes()
    stale = maxrss_bytes() > rss_before + 4 * 2**20
    t = time.perf_counter()
    result = step()
    seconds = time.perf_counter() - t
    peak = hwm_bytes() if stale else maxrss_bytes()
    return result, {"rss_before": rss_before, "peak": peak, "extra": peak - rss_before,
                    "seconds": seconds, "reset": reset,
                    "source": "VmHWM" if stale else "ru_maxrss"}


def time_runs(step, repeats):
    """(wall seconds, CPU seconds) of each of ``repeats`` calls of ``step()`` (results dropped
    at once). CPU time is this process's, all threads: on a machine shared with other jobs it
    is much steadier than wall time for single-threaded work."""
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        step()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - t)
    return wall, cpu


def median(values):
    return statistics.median(values)


def run_worker(script, payload, memory=False, timeout=1800):
    """Run ``script --worker JSON`` in a fresh process; returns the JSON it prints last.

    The process gets :data:`SINGLE_THREAD_ENV` (plus :data:`FIXED_MALLOC_ENV` when ``memory``).
    Raises RuntimeError with the worker's stderr tail if it fails.
    """
    env = dict(os.environ)
    env.update(SINGLE_THREAD_ENV)
    if memory:
        env.update(FIXED_MALLOC_ENV)
    cmd = [sys.executable, script, "--worker", json.dumps(payload)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"worker {payload} failed (exit {proc.returncode}):\n"
                           f"{proc.stderr[-4000:]}\n{proc.stdout[-2000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def emit(result):
    """Worker side of :func:`run_worker`: print the result as the last RESULT line."""
    print("RESULT " + json.dumps(result), flush=True)
