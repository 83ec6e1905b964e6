"""Parallel utilities: communicators, deterministic reductions, collective failure agreement.

``comm.py`` resolves and duplicates communicators, ``collective.py`` holds every collective crk
performs (each starts by agreeing on failure so an exception on one rank raises on all ranks),
``abort.py`` ends the whole job when an exception escapes on one rank, ``devices.py`` binds
ranks to GPUs.
"""
from .abort import abort_on_uncaught_exception, restore_exception_hooks
from .collective import (CollectiveError, agree, allgather, allgather_array, argmax_over_ranks,
                         collective_section, exclusive_scan, max_over_ranks, sum_over_ranks)
from .comm import comms_compatible, private_comm, resolve_comm
from .devices import configure_devices

__all__ = ["CollectiveError", "abort_on_uncaught_exception", "agree", "allgather",
           "allgather_array", "argmax_over_ranks", "collective_section", "configure_devices",
           "exclusive_scan", "max_over_ranks", "restore_exception_hooks", "sum_over_ranks",
           "comms_compatible", "private_comm", "resolve_comm"]
