"""Import TensorFlow with tf-keras (Keras 2): Keras 3 `fit` fails under MultiWorkerMirroredStrategy.

The variable must be set before TensorFlow's first import in the process, so every neural module
imports `tf` and `keras` from here.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf
import tf_keras as keras

__all__ = ["keras", "tf"]
