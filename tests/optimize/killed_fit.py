"""A fit run under mpirun by tests/optimize/test_restart.py, possibly killed part-way.

    mpirun -n N python killed_fit.py OPTIMIZER [--checkpoint FILE] [--kill-after K]

fits a distributed least-squares problem with ``scipy`` (L-BFGS-B) or ``tao`` (bqnls). With
``--kill-after K`` every rank SIGKILLs itself right after iteration K (its checkpoint is on disk
by then). Rank 0 prints the result as one JSON line starting with ``RESULT``.
"""
import argparse
import json
import os
import signal

import numpy as np
from mpi4py import MPI

import crk
from crk.optimize import scipy_minimize, tao_minimize

N = 64


def build(comm):
    weights = np.arange(1, comm.size + 1, dtype=float)
    cuts = np.concatenate([[0], np.round(np.cumsum(weights) / weights.sum() * N)]).astype(int)
    mine = slice(cuts[comm.rank], cuts[comm.rank + 1])
    data = np.sin(np.linspace(0.0, 6.0, N)) + 0.5
    u = crk.array(np.zeros(N)[mine], comm=comm, distributed=True)
    theta = crk.AdjFloat(0.2)
    J = (0.5 * crk.sum((theta * u + 0.2 * u ** 3.0 - data[mine]) ** 2.0)
         + 0.5 * (theta - 1.5) ** 2.0)
    return crk.ReducedFunctional(J, [crk.Control(u), crk.Control(theta)]), mine


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("optimizer", choices=["scipy", "tao"])
    parser.add_argument("--checkpoint")
    parser.add_argument("--kill-after", type=int)
    args = parser.parse_args()
    comm = MPI.COMM_WORLD

    def callback(record, controls):
        if record.iteration == args.kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    with crk.Tape():
        rf, mine = build(comm)
        if args.optimizer == "scipy":
            result = scipy_minimize(rf, options={"gtol": 1e-9, "ftol": 1e-15},
                                    checkpoint_file=args.checkpoint, callback=callback,
                                    quiet=True)
        else:
            result = tao_minimize(rf, gatol=1e-9, grtol=0.0, checkpoint_file=args.checkpoint,
                                  callback=callback, quiet=True)
    u = np.concatenate(comm.allgather(result.controls[0].value))
    if comm.rank == 0:
        print("RESULT " + json.dumps({
            "u": u.tolist(), "theta": float(result.controls[1]), "J": result.J,
            "iterations": result.iterations, "resumed_from": result.resumed_from,
            "forward": result.evaluations.forward, "reason": result.reason,
            "history": [r.iteration for r in result.history]}), flush=True)


if __name__ == "__main__":
    main()
