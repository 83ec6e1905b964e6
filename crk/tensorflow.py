"""crk's TensorFlow interface (re-exports; importing it does not import TensorFlow).

* :func:`run_tensorflow_graph` / :func:`get_params_feed_dict`: tf.compat.v1 graphs run in a
  session, with fed values and the graph's variables as recorded inputs
  (:mod:`crk.backends.tensorflow_graph`);
* :func:`overload_tf` / :func:`model_params` / :func:`set_model_params`: TF2 functions,
  ``tf.function`` and Keras models, with the model's weights as recorded inputs
  (:mod:`crk.backends.tensorflow`);
* point maps written in TensorFlow live in :mod:`crk.cr.tensorflow`.
"""
from .backends.tensorflow import OverloadedTF, model_params, overload_tf, set_model_params
from .backends.tensorflow_graph import get_params_feed_dict, run_tensorflow_graph

__all__ = ["OverloadedTF", "get_params_feed_dict", "model_params", "overload_tf",
           "run_tensorflow_graph", "set_model_params"]
