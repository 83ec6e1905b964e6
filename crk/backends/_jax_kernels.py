"""How crk runs JAX: float64 scope, devices, padded point counts, compiled programs.

* :func:`float64`: the scoped, thread-local 64-bit setting every crk JAX computation runs in
  (JAX's global ``jax_enable_x64`` flag is never changed; see :mod:`crk.backends.jax`).
* :func:`resolve_device`: the device a ``backend=`` option names.
* :func:`bucket_size` / :func:`shared_bucket` / :func:`pad_points`: the point axis of a
  pointwise call is padded to a bucket size, the same on every rank, so all ranks compile and
  run the same programs and a new point count rarely means a new compilation.
* :class:`Kernels`: the forward and derivative programs of one function and call signature,
  built (and compiled) once and shared by every call and block, with the per-program compiler
  options of :func:`compiler_options`.

Importing this module does not import JAX.
"""
import numpy as np

from .common import import_backend


def import_jax():
    """The ``jax`` module, imported on first use."""
    return import_backend("jax", "JAX", "jax")


def float64():
    """Context manager under which crk runs JAX: 64-bit types on, for this thread only.

    ``jax.enable_x64(True)`` is a scoped setting; JAX's global ``jax_enable_x64`` flag is not
    changed. Not collective.
    """
    return import_jax().enable_x64(True)


def resolve_device(backend):
    """The JAX device for ``backend``: None (JAX's default), a platform name or a Device."""
    if backend is None:
        return None
    jax = import_jax()
    if isinstance(backend, str):
        try:
            return jax.devices(backend)[0]
        except RuntimeError as e:
            raise ValueError(f"backend={backend!r}: JAX has no such platform here "
                             f"(available: {[d.platform for d in jax.devices()]}): {e}") from None
    return backend


# -- point buckets: every rank compiles the same programs ----------------------------------------
def bucket_size(n):
    """The padded length for ``n`` points: at least 8, with at most 4 significant bits.

    (8, 9, ..., 15, 16, 18, ..., 30, 32, 36, ...): padding adds less than 1/8 of the points, and
    the number of distinct compiled shapes grows only logarithmically with n.
    """
    n = max(int(n), 8)
    shift = n.bit_length() - 4
    return -(-n >> shift) << shift


def shared_bucket(n, comm):
    """:func:`bucket_size` of the largest local point count over ``comm``.

    Collective over ``comm`` (every rank calls it at the same point) when ``comm`` has more than
    one rank.
    """
    from ..parallel.collective import max_over_ranks
    return bucket_size(max_over_ranks(int(n), comm))


def pad_points(a, size, zeros=False):
    """``a`` with axis 0 extended to ``size``: repeating its last point, or with zeros.

    Forward inputs are padded with a copy of a real point so padded rows never produce NaN or
    inf, which would leak into parameter derivatives (0 * NaN = NaN); tangents and cotangents
    are padded with zeros so padded rows contribute exactly nothing.
    """
    a = np.asarray(a)
    n = a.shape[0]
    if n == size:
        return a
    if zeros or n == 0:
        fill = np.zeros((size - n,) + a.shape[1:], dtype=a.dtype)
    else:
        fill = np.broadcast_to(a[-1:], (size - n,) + a.shape[1:])
    return np.concatenate([a, fill])


# -- compiled programs -------------------------------------------------------------------------
#: XLA options for crk's programs. XLA:CPU's YNNPACK fusion turns the small per-point
#: reductions of point maps (|g|² over 2 or 3 components) into library calls that are several
#: times slower than XLA's own loops: on the 2D p-Laplacian flux it made the forward program
#: ~1.5-4x and the batched Jacobian program ~5x slower. Passed per compilation (``jax.jit``'s
#: ``compiler_options``), so no global XLA setting changes.
PROGRAM_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": ""}
_program_options = []


def compiler_options():
    """:data:`PROGRAM_OPTIONS` if this jaxlib knows them (checked once by compiling a trivial
    program), else None. Not collective."""
    if not _program_options:
        jax = import_jax()
        try:
            jax.jit(lambda x: x + 1, compiler_options=PROGRAM_OPTIONS).lower(
                np.zeros(1, np.float32)).compile()
            _program_options.append(dict(PROGRAM_OPTIONS))
        except Exception:       # an older/newer XLA without the option: its defaults
            _program_options.append(None)
    return _program_options[0]


def with_differentiated(fn, xs, diff_pos):
    """``fn`` as a function of the leaves at ``diff_pos`` only (the others fixed to ``xs``)."""
    def g(*diff):
        full = list(xs)
        for p, d in zip(diff_pos, diff):
            full[p] = d
        return fn(tuple(full))
    return g


class Kernels:
    """The programs of one function for one call signature (static values, input structure).

    ``fn(leaves) -> output pytree``. Each program is built (and, with ``jit``, compiled by JAX
    per shape/dtype) once and reused by every block. ``counts[kind]`` counts how often a
    program's Python body ran, i.e. traces under jit.
    """

    def __init__(self, fn, use_jit, counts):
        self.fn = fn
        self.use_jit = use_jit
        self.counts = counts
        self._programs = {}

    def _program(self, kind, diff_pos, make):
        key = (kind, diff_pos)
        program = self._programs.get(key)
        if program is None:
            body = make()
            counts = self.counts

            def counted(*a):
                counts[kind] += 1
                return body(*a)
            program = import_jax().jit(counted, compiler_options=compiler_options()) \
                if self.use_jit else counted
            self._programs[key] = program
        return program

    def forward(self):
        return self._program("forward", None, lambda: self.fn)

    def forward_vjp(self, diff_pos):
        jax, fn = import_jax(), self.fn
        return self._program("forward_vjp", diff_pos, lambda: lambda xs: jax.vjp(
            with_differentiated(fn, xs, diff_pos), *[xs[p] for p in diff_pos]))

    def vjp(self, diff_pos):
        jax, fn = import_jax(), self.fn
        return self._program("vjp", diff_pos, lambda: lambda xs, ct: jax.vjp(
            with_differentiated(fn, xs, diff_pos), *[xs[p] for p in diff_pos])[1](ct))

    def vjp_from_residuals(self):
        return self._program("vjp_residuals", None, lambda: lambda pullback, ct: pullback(ct))

    def jvp(self, diff_pos):
        jax, fn = import_jax(), self.fn
        return self._program("jvp", diff_pos, lambda: lambda xs, ts: jax.jvp(
            with_differentiated(fn, xs, diff_pos), tuple(xs[p] for p in diff_pos), tuple(ts))[1])

    def hvp(self, diff_pos):
        jax, fn = import_jax(), self.fn

        def make():
            def second_order(xs, ts, ct):
                def pulled_back(*diff):
                    return jax.vjp(with_differentiated(fn, xs, diff_pos), *diff)[1](ct)
                return jax.jvp(pulled_back, tuple(xs[p] for p in diff_pos), tuple(ts))[1]
            return second_order
        return self._program("hvp", diff_pos, make)
