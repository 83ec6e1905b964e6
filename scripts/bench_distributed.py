"""Benchmark of global indexing on distributed arrays, against the same work on bare numpy/MPI.

Run under MPI (the figures of interest are for 2 ranks):

    mpirun -n 2 python scripts/bench_distributed.py [--size 1000000] [--repeats 21] [--json FILE]

For a distributed array of --size elements split evenly, each figure is the median over
--repeats runs of the slowest rank's wall time (ranks start together after a barrier), with its
baseline measured in the same run, interleaved:

* ``x[1:] - x[:-1]`` recorded (two slices, one neighbour exchange, the subtraction; the layout
  already known) against numpy's ``p[1:] - p[:-1]`` on this rank's piece ``p``, and against the
  same numpy line whose result is kept until the next run (a tape keeps its values, so each run
  writes fresh memory; numpy alone reuses the buffer it just freed);
* the gradient of ``J = sum((x[1:] - x[:-1])**2)`` (``rf.derivative()``, replaying nothing)
  against the hand-written adjoint on the piece (``g = 2 d; gx[1:] += g; gx[:-1] -= g``);
* one global integer index ``x[n // 2]`` (one broadcast) against ``comm.Bcast`` of one float;
* ``crk.gather(x)`` against ``comm.Allgatherv`` of the pieces (mpi4py, no crk);
* the first slice of a fresh array, which learns the layout (one allgather), against a slice of
  an array whose layout is known.

A tape keeps the arrays it records until it is cleared; freeing them and allocating new ones of
the same size then makes glibc return the memory to the system and fault fresh pages in, which
on a virtual machine can cost more than the arithmetic. ``--warm-allocator`` keeps freed memory
in the process (``mallopt``: no mmap for large blocks, no trimming), the setting to compare the
work itself.
"""
import argparse
import json
import statistics
import time

import numpy as np
from mpi4py import MPI

import crk
from crk.distributed.layout import resolve


def timed(comm, fn):
    """Wall time of ``fn()`` on the slowest rank (all ranks start after a barrier)."""
    comm.Barrier()
    t = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - t
    return comm.allreduce(elapsed, op=MPI.MAX)


def interleaved(comm, runs, repeats):
    """Median time of each of ``runs`` (name -> (setup, fn)), the runs interleaved so machine
    noise hits them alike."""
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, (setup, fn) in runs.items():
            state = setup() if setup else None
            times[name].append(timed(comm, (lambda: fn(state)) if setup else fn))
    return {name: statistics.median(t) for name, t in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=10 ** 6)
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--json", help="write the figures to this file (rank 0)")
    parser.add_argument("--warm-allocator", action="store_true",
                        help="keep freed memory in the process (glibc mallopt)")
    args = parser.parse_args()
    if args.warm_allocator:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        libc.mallopt(m_mmap_threshold, 2 ** 30)
        libc.mallopt(m_trim_threshold, 2 ** 30)
    comm = MPI.COMM_WORLD
    n = args.size
    counts = [n // comm.size + (r < n % comm.size) for r in range(comm.size)]
    start = sum(counts[:comm.rank])
    piece = np.sin(np.arange(start, start + counts[comm.rank]) * 1e-3)

    def fresh_array():
        return crk.array(piece, comm=comm, distributed=True)

    def known_array():
        y = fresh_array()
        resolve(y)
        return y

    x = fresh_array()
    resolve(x)
    tape = crk.Tape()

    def record_difference():
        tape.clear_tape()
        with tape:
            return x[1:] - x[:-1]

    with crk.Tape():
        xc = crk.array(piece, comm=comm, distributed=True)
        d = xc[1:] - xc[:-1]
        rf = crk.ReducedFunctional(crk.sum(d * d), crk.Control(xc))
        rf.derivative()

    def hand_adjoint():
        # what a hand-written adjoint of sum((p[1:] - p[:-1])**2) costs on the piece (without
        # its boundary exchange)
        g = 2.0 * (piece[1:] - piece[:-1])
        gx = np.zeros_like(piece)
        gx[1:] += g
        gx[:-1] -= g
        return gx

    one = np.zeros(1)
    gathered = np.empty(n)
    displacements = np.concatenate([[0], np.cumsum(counts)[:-1]])

    def raw_allgather():
        comm.Allgatherv(piece, [gathered, counts, displacements, MPI.DOUBLE])

    def with_tape(fn):
        def run():
            tape.clear_tape()
            with tape:
                fn()
        return run

    kept = []

    def numpy_kept():
        # like a tape, hold the result until the next run: fresh memory every time, as the
        # recorded version needs (numpy alone reuses the buffer it just freed)
        kept.clear()
        kept.append(piece[1:] - piece[:-1])

    figures = interleaved(comm, {
        "numpy_difference": (None, lambda: piece[1:] - piece[:-1]),
        "numpy_difference_kept": (None, numpy_kept),
        "crk_difference": (None, record_difference),
        "hand_adjoint": (None, hand_adjoint),
        "crk_gradient": (None, rf.derivative),
        "bcast_one_float": (None, lambda: comm.Bcast(one, root=0)),
        "crk_integer_index": (None, with_tape(lambda: x[n // 2])),
        "mpi_allgatherv": (None, raw_allgather),
        "crk_gather": (None, with_tape(lambda: crk.gather(x))),
        "slice_known_layout": (known_array, lambda y: with_tape(lambda: y[1:])()),
        "slice_fresh_array": (fresh_array, lambda y: with_tape(lambda: y[1:])()),
    }, args.repeats)
    ratios = {
        "difference": figures["crk_difference"] / figures["numpy_difference"],
        "difference_vs_kept": figures["crk_difference"] / figures["numpy_difference_kept"],
        "gradient": figures["crk_gradient"] / figures["hand_adjoint"],
        "integer_index": figures["crk_integer_index"] / figures["bcast_one_float"],
        "gather": figures["crk_gather"] / figures["mpi_allgatherv"],
        "fresh_slice": figures["slice_fresh_array"] / figures["slice_known_layout"],
    }
    if comm.rank == 0:
        ms = {k: 1e3 * v for k, v in figures.items()}
        print(f"crk distributed indexing: {n} elements on {comm.size} rank(s) "
              f"({counts[0]} per piece), median of {args.repeats}, slowest rank"
              f"{', warm allocator' if args.warm_allocator else ''}")
        print(f"  x[1:] - x[:-1]      crk {ms['crk_difference']:8.3f} ms   numpy on the piece "
              f"{ms['numpy_difference']:8.3f} ms   ratio {ratios['difference']:.2f}")
        print(f"                      numpy, result kept to the next run "
              f"{ms['numpy_difference_kept']:8.3f} ms   ratio {ratios['difference_vs_kept']:.2f}")
        print(f"  its gradient        crk {ms['crk_gradient']:8.3f} ms   hand adjoint on the "
              f"piece {ms['hand_adjoint']:8.3f} ms   ratio {ratios['gradient']:.2f}")
        print(f"  x[n // 2]           crk {ms['crk_integer_index']:8.3f} ms   MPI Bcast of a "
              f"float {ms['bcast_one_float']:8.3f} ms   ratio {ratios['integer_index']:.1f}")
        print(f"  crk.gather(x)       crk {ms['crk_gather']:8.3f} ms   MPI Allgatherv "
              f"{ms['mpi_allgatherv']:8.3f} ms   ratio {ratios['gather']:.2f}")
        print(f"  x[1:], fresh array  {ms['slice_fresh_array']:8.3f} ms   layout known "
              f"{ms['slice_known_layout']:8.3f} ms   ratio {ratios['fresh_slice']:.2f}")
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"size": n, "ranks": comm.size, "repeats": args.repeats,
                           "warm_allocator": args.warm_allocator, "seconds": figures,
                           "ratios": ratios}, f, indent=2)


if __name__ == "__main__":
    main()
