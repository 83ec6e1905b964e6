"""The material law of the residual form, evaluated at quadrature points.

The residual of every problem is

    R(u)[v] = ∫ q(u, ∇u; θ) : ∇v + c(u, ∇u; θ) · v dx − ∫ f · v dx − ∫_ΓN g · v ds

with a flux q (m × d per point) and an optional reaction c (m per point) given as crk point maps
(JAX, Autograd or TensorFlow). A :class:`Law` binds those maps to the quadrature-point values:

* the maps' leading arguments are the *state*: ``(u, grad_u)``, or ``(grad_u,)`` for a law of
  the gradient only (read from the declared shapes unless ``state=`` says it). Per point,
  ``u`` has shape (m,) (or () when m = 1) and ``grad_u`` (m, d) (or (d,) when m = 1), as the
  map declares them;
* the remaining arguments are the *coefficients*, the same list for flux and reaction:
  parameters shared by all points (declared by their plain shape, replicated values θ) and
  pointwise fields (declared (-1, *s); nodal fields interpolated to the points);
* ``energy=True``: the map is a stored energy W(state, coefficients) (one value per point) and
  the law is its derivative: q = ∂W/∂(∇u) and, when ``u`` is in the state, c = ∂W/∂u. The
  derivative is taken by the map's own backend (so second derivatives of the law, needed by
  Hessian actions, are third derivatives of W, also by the backend).

All methods take and return plain arrays at n points: u (n, m), ∇u (n, m, d), fluxes (n, m, d),
reactions (n, m); they run on this rank's points only (not collective).
"""
import numpy as np

from crk.cr.point_map import PointMap

STATE_NAMES = ("u", "grad_u")


def as_point_map(obj, what):
    """The crk PointMap of ``obj`` (a PointMap or a ``bare=True`` point-map function)."""
    pm = getattr(obj, "point_map", obj)
    if not isinstance(pm, PointMap):
        raise TypeError(f"{what}: expected a crk point map (made with crk.cr.jax.point_map, "
                        f"crk.cr.autograd.point_map or crk.cr.tensorflow.point_map), got "
                        f"{type(obj).__name__}")
    return pm


def infer_state(pm, dim):
    """The state arguments a map declares: ("u", "grad_u") when its first two arguments are
    pointwise with shapes () and (dim,) or (m,) and (m, dim); else ("grad_u",) (then the first
    argument must be a gradient). Pass ``state=`` explicitly where this guess is wrong."""
    shapes = [(pw, s) for pw, s in zip(pm.pointwise, pm.in_point_shapes)]
    if len(shapes) >= 2 and shapes[0][0] and shapes[1][0]:
        u, g = shapes[0][1], shapes[1][1]
        if (u == () and g == (dim,)) or (len(u) == 1 and g == (u[0], dim)):
            return STATE_NAMES
    return ("grad_u",)


def declared_shape(pm, i):
    return ((-1,) if pm.pointwise[i] else ()) + pm.in_point_shapes[i]


class Law:
    """Flux and reaction point maps bound to the state and coefficients of a residual form.

    ``flux``: the flux point map (or, with ``energy=True``, the stored-energy map);
    ``reaction``: an optional reaction point map (not with ``energy``); ``state``: the leading
    state arguments, ("u", "grad_u") or ("grad_u",); None reads it from the flux's declared
    shapes (:func:`infer_state`); ``dim``: the space dimension. ``components`` (m) is read from
    the flux's declared shape.
    """

    def __init__(self, flux, dim, reaction=None, energy=False, state=None):
        if state is None:
            state = infer_state(as_point_map(flux, "flux"), int(dim))
        state = tuple(state)
        if state not in (("u", "grad_u"), ("grad_u",)):
            raise ValueError(f"Law: argument 'state' must be ('u', 'grad_u') or ('grad_u',), "
                             f"got {state!r}")
        self.state = state
        self.dim = d = int(dim)
        self.energy = bool(energy)
        flux = as_point_map(flux, "flux")
        if reaction is not None:
            reaction = as_point_map(reaction, "reaction")
            if energy:
                raise ValueError("Law: with energy=True the reaction is the derivative of the "
                                 "energy with respect to u; give no separate reaction")
        ns = len(state)
        self.n_state = ns
        for pm, what in ((flux, "flux"), (reaction, "reaction")):
            if pm is None:
                continue
            if pm.n_inputs < ns or not all(pm.pointwise[:ns]):
                raise ValueError(f"{what} {pm.name}: its first {ns} argument(s) must be the "
                                 f"pointwise state {state}, declared (-1, ...); it declares "
                                 f"{[declared_shape(pm, i) for i in range(pm.n_inputs)]}")
            if pm.n_outputs != 1 and not (energy and what == "flux"):
                raise ValueError(f"{what} {pm.name}: must return one per-point array, it "
                                 f"declares {pm.n_outputs} outputs")
        g_pos = state.index("grad_u")
        g_shape = flux.in_point_shapes[g_pos]
        size = int(np.prod(g_shape))
        if size % d:
            raise ValueError(f"flux {flux.name}: argument grad_u must hold m x {d} values per "
                             f"point (shape ({d},) or (m, {d})), it declares {g_shape}")
        self.m = m = size // d
        if g_shape not in ((d,), (m, d)) or (m > 1 and g_shape != (m, d)):
            raise ValueError(f"flux {flux.name}: argument grad_u must have per-point shape "
                             f"({d},) for a scalar or (m, {d}), got {g_shape}")
        self.u_shape = () if g_shape == (d,) else (m,)
        self.g_shape = g_shape
        if "u" in state and flux.in_point_shapes[0] != self.u_shape:
            raise ValueError(f"flux {flux.name}: argument u must have per-point shape "
                             f"{self.u_shape} (grad_u has {g_shape}), got "
                             f"{flux.in_point_shapes[0]}")
        self.n_coefficients = flux.n_inputs - ns
        self.coefficient_pointwise = tuple(flux.pointwise[ns:])
        self.coefficient_shapes = tuple(flux.in_point_shapes[ns:])
        if reaction is not None:
            if reaction.in_point_shapes != flux.in_point_shapes or \
                    reaction.pointwise != flux.pointwise:
                raise ValueError(f"reaction {reaction.name}: must take the same arguments as the "
                                 f"flux {flux.name} (state, then the same coefficients); they "
                                 f"declare {[declared_shape(reaction, i) for i in range(reaction.n_inputs)]}"
                                 f" and {[declared_shape(flux, i) for i in range(flux.n_inputs)]}")
        if energy:
            if flux.n_outputs != 1 or flux.out_point_shapes[0] != ():
                raise ValueError(f"energy {flux.name}: must return one value per point, "
                                 f"declared (-1,); it declares {flux.out_point_shapes}")
            self.maps = [(gradient_map(flux, tuple(range(ns))[::-1] if ns == 2 else (0,)),
                          ("flux", "reaction") if ns == 2 else ("flux",))]
            self.name = f"energy {flux.name}"
        else:
            if flux.out_point_shapes[0] != g_shape:
                raise ValueError(f"flux {flux.name}: must return per-point shape {g_shape} (that "
                                 f"of grad_u), it declares {flux.out_point_shapes[0]}")
            self.maps = [(flux, ("flux",))]
            self.name = f"flux {flux.name}"
            if reaction is not None:
                if reaction.out_point_shapes[0] != self.u_shape:
                    raise ValueError(f"reaction {reaction.name}: must return per-point shape "
                                     f"{self.u_shape}, it declares "
                                     f"{reaction.out_point_shapes[0]}")
                self.maps.append((reaction, ("reaction",)))
                self.name += f" + reaction {reaction.name}"
        self.has_reaction = any("reaction" in roles for _, roles in self.maps)
        self.uses_u = "u" in state

    # -- argument packing ------------------------------------------------------------------
    def _args(self, uq, gq, coefs):
        n = gq.shape[0]
        state = []
        if self.uses_u:
            state.append(uq.reshape((n,) + self.u_shape))
        state.append(gq.reshape((n,) + self.g_shape))
        return tuple(state) + tuple(coefs)

    def _state_tangents(self, du, dg, n):
        out = []
        if self.uses_u:
            out.append(None if du is None else du.reshape((n,) + self.u_shape))
        out.append(None if dg is None else dg.reshape((n,) + self.g_shape))
        return out

    def _cotangents(self, roles, qbar, cbar, n):
        cots = []
        for role in roles:
            if role == "flux":
                cots.append(None if qbar is None else qbar.reshape((n,) + self.g_shape))
            else:
                cots.append(None if cbar is None else cbar.reshape((n,) + self.u_shape))
        return tuple(cots)

    def _merge(self, outputs, n):
        """Flux and reaction from the maps' outputs, given as (outputs, roles) per map."""
        q = c = None
        for outs, roles in outputs:
            qq, cc = self._split(outs, roles, n)
            q = qq if qq is not None else q
            c = cc if cc is not None else c
        return q, c

    def _split(self, outs, roles, n):
        q = c = None
        for out, role in zip(outs, roles):
            if out is None:
                continue
            if role == "flux":
                q = np.asarray(out).reshape(n, self.m, self.dim)
            else:
                c = np.asarray(out).reshape(n, self.m)
        return q, c

    def _collect(self, grads, n, argnums, acc):
        """Add a vjp/hvp result (one per argnum) into acc = [u, grad, coefs...]."""
        for a, g in zip(argnums, grads):
            if g is None:
                continue
            slot = a if self.uses_u else a + 1
            if slot == 0:
                g = np.asarray(g).reshape(n, self.m)
            elif slot == 1:
                g = np.asarray(g).reshape(n, self.m, self.dim)
            else:
                g = np.asarray(g)
            acc[slot] = g if acc[slot] is None else acc[slot] + g

    # -- evaluations on plain values ---------------------------------------------------------
    def evaluate(self, uq, gq, coefs):
        """Flux (n, m, d) and reaction (n, m) or None."""
        n = gq.shape[0]
        args = self._args(uq, gq, coefs)
        return self._merge(((pm.evaluate(args), roles) for pm, roles in self.maps), n)

    def jacobians(self, uq, gq, coefs):
        """Per-point Jacobians: dict with keys "gg" (n, m, d, m, d) = ∂q/∂∇u, "gu"
        (n, m, d, m) = ∂q/∂u, "ug" (n, m, m, d) = ∂c/∂∇u, "uu" (n, m, m) = ∂c/∂u (absent when
        zero)."""
        return self._jacobians(uq, gq, coefs, values=False)[2]

    def value_and_jacobians(self, uq, gq, coefs):
        """Flux, reaction (or None) and the per-point Jacobians (as :meth:`jacobians`) at the
        same points, from the maps' ``value_and_jacobians`` (one pass where the backend can)."""
        return self._jacobians(uq, gq, coefs, values=True)

    def _jacobians(self, uq, gq, coefs, values):
        n = gq.shape[0]
        m, d = self.m, self.dim
        args = self._args(uq, gq, coefs)
        argnums = tuple(range(self.n_state))
        out, outputs = {}, []
        for pm, roles in self.maps:
            if values:
                outs, J = pm.value_and_jacobians(*args, argnums=argnums)
                outputs.append((outs, roles))
            else:
                J = pm.jacobians(*args, argnums=argnums)
            for o, role in enumerate(roles):
                for k, name in enumerate(self.state):
                    key = ("g" if role == "flux" else "u") + ("g" if name == "grad_u" else "u")
                    shape = {"gg": (n, m, d, m, d), "gu": (n, m, d, m), "ug": (n, m, m, d),
                             "uu": (n, m, m)}[key]
                    out[key] = np.asarray(J[o][k]).reshape(shape)
        return self._merge(outputs, n) + (out,)

    def jvp(self, uq, gq, coefs, du, dg, dcoefs):
        """Tangents of flux and reaction for state tangents du (n, m), dg (n, m, d) and
        coefficient tangents (None = zero)."""
        n = gq.shape[0]
        args = self._args(uq, gq, coefs)
        tangents = tuple(self._state_tangents(du, dg, n)) + tuple(dcoefs)
        if all(t is None for t in tangents):
            return None, None
        return self._merge(((pm.jvp(args, tangents), roles) for pm, roles in self.maps), n)

    def vjp(self, uq, gq, coefs, qbar, cbar, coef_mask, state=True):
        """Cotangents of u (n, m), ∇u (n, m, d) (if ``state``, else None) and of the
        coefficients where ``coef_mask`` is True (parameters: summed over this rank's points),
        for flux/reaction cotangents."""
        n = gq.shape[0]
        args = self._args(uq, gq, coefs)
        argnums = self._argnums(coef_mask, state)
        if not argnums:
            return None, None, [None] * self.n_coefficients
        acc = [None] * (2 + self.n_coefficients)
        for pm, roles in self.maps:
            cots = self._cotangents(roles, qbar, cbar, n)
            if all(c is None for c in cots):
                continue
            self._collect(pm.vjp(args, cots, argnums), n, argnums, acc)
        return acc[0], acc[1], acc[2:]

    def hvp(self, uq, gq, coefs, du, dg, dcoefs, qbar, cbar, coef_mask, state=True):
        """Second-order terms d/dt vjp(state + t δstate, coefs + t δcoefs; qbar, cbar), laid
        out as :meth:`vjp`'s result."""
        n = gq.shape[0]
        args = self._args(uq, gq, coefs)
        tangents = tuple(self._state_tangents(du, dg, n)) + tuple(dcoefs)
        argnums = self._argnums(coef_mask, state)
        acc = [None] * (2 + self.n_coefficients)
        if all(t is None for t in tangents) or not argnums:
            return acc[0], acc[1], acc[2:]
        for pm, roles in self.maps:
            cots = self._cotangents(roles, qbar, cbar, n)
            if all(c is None for c in cots):
                continue
            self._collect(pm.hvp(args, tangents, cots, argnums), n, argnums, acc)
        return acc[0], acc[1], acc[2:]

    def _argnums(self, coef_mask, state=True):
        ns = self.n_state
        return tuple(range(ns) if state else ()) + \
            tuple(ns + i for i, on in enumerate(coef_mask) if on)


# -- stored energies: the law as the derivative of W, by W's own backend ----------------------
def gradient_map(pm, positions):
    """A point map of the same backend returning ∂W/∂(argument p) for p in ``positions``
    (per point; W = ``pm`` returns one value per point). Outputs in the order of
    ``positions``."""
    from crk.cr.autograd import AutogradPointMap
    from crk.cr.jax import JaxPointMap
    from crk.cr.tensorflow import TFPointMap
    in_shapes = tuple(declared_shape(pm, i) for i in range(pm.n_inputs))
    out_shapes = tuple(declared_shape(pm, p) for p in positions)
    name = f"d{pm.name}"
    if isinstance(pm, JaxPointMap):
        return JaxPointMap(_jax_gradient(pm.fn, positions, pm.batched), in_shapes, out_shapes,
                           name=name, batched=pm.batched, jit=pm.jit, backend=pm.backend)
    if isinstance(pm, AutogradPointMap):
        return AutogradPointMap(_autograd_gradient(pm.func, positions), in_shapes, out_shapes,
                                name=name)
    if isinstance(pm, TFPointMap):
        return TFPointMap(_tf_gradient(pm.fn, positions), in_shapes, out_shapes, name=name)
    raise TypeError(f"energy {pm.name}: energy=True needs a JAX, Autograd or TensorFlow point "
                    f"map (its backend differentiates the energy), got {type(pm).__name__}")


def _replace(args, positions, values):
    full = list(args)
    for p, v in zip(positions, values):
        full[p] = v
    return full


def _jax_gradient(fn, positions, batched):
    def grad(*args):
        import jax
        import jax.numpy as jnp

        def total(*s):
            w = fn(*_replace(args, positions, s))
            return jnp.sum(w) if batched else w
        return tuple(jax.grad(total, argnums=tuple(range(len(positions))))(
            *[args[p] for p in positions]))
    return grad


def _autograd_gradient(func, positions):
    def grad(*args):
        import autograd
        import autograd.numpy as anp
        out = []
        for p in positions:
            def total(x, p=p):
                return anp.sum(func(*_replace(args, (p,), (x,))))
            out.append(autograd.grad(total)(args[p]))
        return tuple(out)
    return grad


def _tf_gradient(fn, positions):
    def grad(*xs):
        import tensorflow as tf
        watched = [xs[p] for p in positions]
        with tf.GradientTape() as tape:
            for x in watched:
                tape.watch(x)
            total = tf.reduce_sum(fn(*xs))
        return tuple(tape.gradient(total, watched,
                                   unconnected_gradients=tf.UnconnectedGradients.ZERO))
    return grad
