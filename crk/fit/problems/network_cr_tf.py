"""The network_cr fit with a Keras network through crk's TensorFlow backend.

The flux q = μ(|∇u|²; w) ∇u, the synthetic truth, the loadings and the misfit are those of
:mod:`crk.fit.problems.network_cr`; μ is a Keras ``Sequential`` model (Dense 1 → width → width
→ 1, tanh, softplus output, + 10⁻³), every layer made with ``dtype="float64"`` (a per-layer dtype
policy: Keras' global float type is left alone). The model's weights are one flat replicated
control w; the point map (:func:`crk.cr.tensorflow.point_map`) evaluates the model as a function
of w by ``model.stateless_call``, so TensorFlow differentiates it with respect to both ∇u and w
(first and second order) inside crk's traced functions.
"""
import numpy as np

from .network_cr import NetworkCRFit, _network


class NetworkCRTFFit(NetworkCRFit):
    name = "network_cr_tf"
    description = ("learn a Keras (TensorFlow) MLP flux q = mu(|grad u|^2; w) grad u from "
                   "several loadings")

    def make_network(self, width):
        return KerasNetwork(width)

    def make_flux(self, network):
        return _tf_flux(network)


class KerasNetwork(_network):
    """μ(s; w) by a float64 Keras MLP 1 → width → width → 1 of the invariant. ``w`` is one flat
    vector in the order of the model's trainable variables (kernel, bias per layer), the same
    layout and starting weights as the JAX network's."""

    def __init__(self, width):
        import keras
        super().__init__(width)
        self.model = keras.Sequential(
            [keras.Input((1,), dtype="float64"),
             keras.layers.Dense(width, activation="tanh", dtype="float64"),
             keras.layers.Dense(width, activation="tanh", dtype="float64"),
             keras.layers.Dense(1, activation="softplus", dtype="float64")])
        shapes = [tuple(v.shape) for v in self.model.trainable_variables]
        if shapes != [tuple(sh) for sh in self.shapes]:
            raise RuntimeError(f"network_cr_tf: Keras made weights of shapes {shapes}, "
                               f"expected {self.shapes}")

    def apply(self, s, w):
        """μ at the invariants ``s`` (n,) for the flat weights ``w``: TensorFlow tensors."""
        import tensorflow as tf
        out, _ = self.model.stateless_call(self.unflatten(w, tf.reshape), [], s[:, None])
        return out[:, 0] + 1e-3

    def mu(self, s, w):
        import tensorflow as tf
        return self.apply(tf.constant(np.asarray(s, dtype=np.float64)),
                          tf.constant(np.asarray(w, dtype=np.float64))).numpy()


def _tf_flux(network):
    """q(∇u; w) = μ(|∇u|²; w) ∇u as a TensorFlow point map."""
    from ...cr.tensorflow import point_map

    @point_map(((-1, 2), (network.size,)), (-1, 2))
    def flux(g, w):
        import tensorflow as tf
        return network.apply(tf.reduce_sum(g * g, axis=1), w)[:, None] * g
    return flux
