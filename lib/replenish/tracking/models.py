"""Log, register and load models in MLflow: a tf-keras network (Keras through MLflow's TensorFlow flavour)
and a Spark ML model such as ALS (Spark flavour), each with its input example and signature.

A job logs into its own MLflow run (`track_job` has started it) with one call, and a later run loads
a model back by registered name and version:

Example:
    ```python
    logged = log_keras_model(network, input_example=windows[:5], registered_name="replenish-lstm")
    network = load_registered_model("replenish-lstm", logged.version)   # models:/replenish-lstm/1
    ```

tf-keras must be the `tf.keras` of the process: set `TF_USE_LEGACY_KERAS=1` before TensorFlow is
first imported (MLflow's `keras` flavour is Keras 3's; a tf-keras model goes through `mlflow.tensorflow`,
which stores it as a Keras model).
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from replenish.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


@dataclass(frozen=True)
class LoggedModel:
    """A model logged to an MLflow run, and its registry version when it was registered.

    Attributes:
        uri: `models:/<name>/<version>` when registered, else the logged model's own URI.
        run_id: the MLflow run it was logged in.
        name: registered model name, or None.
        version: registry version (1, 2, ...), or None.
    """

    uri: str
    run_id: str | None
    name: str | None = None
    version: int | None = None


def model_uri(name: str, version: int | str) -> str:
    """`models:/<name>/<version>`, the URI a forecast run loads a registered model by."""
    return f"models:/{name}/{version}"


def _requirements(*distributions: str) -> list[str]:
    """Pinned requirements of the flavour (skips MLflow's inference, which loads the model in a subprocess)."""
    return [f"{name}=={importlib.metadata.version(name)}" for name in distributions]


def _logged(info: Any, registered_name: str | None) -> LoggedModel:
    """The `ModelInfo` MLflow returns, as a `LoggedModel` addressed by registry name and version when registered."""
    version = info.registered_model_version
    if registered_name is None or version is None:
        return LoggedModel(info.model_uri, info.run_id)
    return LoggedModel(model_uri(registered_name, version), info.run_id, registered_name, int(version))


def log_keras_model(
    model: Any,
    *,
    input_example: np.ndarray,
    registered_name: str | None = None,
    name: str = "model",
    metadata: dict[str, Any] | None = None,
) -> LoggedModel:
    """Log a tf-keras model to the active run, with its signature inferred from `input_example`.

    Args:
        model: a compiled `tf.keras.Model` (tf-keras 2, `TF_USE_LEGACY_KERAS=1`).
        input_example: a few input rows, e.g. `windows[:5]` of shape (n, lookback, features).
        registered_name: register a new version of this model name; None: log only.
        name: the logged model's name within the run.
        metadata: stored in the MLmodel file (e.g. the lookback and feature names).

    Raises:
        ConfigError: `model` is not a tf-keras model (Keras 3 is imported instead of tf-keras).
    """
    import mlflow
    import mlflow.tensorflow
    import numpy as np
    import tensorflow as tf
    from mlflow.models import infer_signature

    if not isinstance(model, tf.keras.Model):
        raise ConfigError(
            f"log_keras_model expects a tf.keras model, got {type(model).__module__}.{type(model).__name__}; "
            "set TF_USE_LEGACY_KERAS=1 before TensorFlow is imported"
        )
    example = np.asarray(input_example)
    signature = infer_signature(example, np.asarray(model.predict(example, verbose=0)))
    info = mlflow.tensorflow.log_model(
        model,
        name=name,
        signature=signature,
        input_example=example,
        registered_model_name=registered_name,
        pip_requirements=_requirements("tensorflow", "tf-keras"),
        metadata=metadata,
    )
    return _logged(info, registered_name)


def log_spark_model(
    model: Any,
    *,
    input_example: pd.DataFrame,
    registered_name: str | None = None,
    name: str = "model",
    prediction_col: str = "prediction",
    metadata: dict[str, Any] | None = None,
) -> LoggedModel:
    """Log a fitted Spark ML model (e.g. an `ALSModel`) to the active run with its signature.

    The signature maps the columns of `input_example` to `prediction_col` of the model's `transform`
    on them, computed on the active Spark session.

    Args:
        model: a fitted `pyspark.ml.Model` or `PipelineModel`.
        input_example: a few input rows as pandas (for ALS: the user and item columns).
        registered_name: register a new version of this model name; None: log only.
        name: the logged model's name within the run.
        prediction_col: the output column the signature describes.
        metadata: stored in the MLmodel file.
    """
    import mlflow
    import mlflow.spark
    from mlflow.models import infer_signature
    from pyspark.sql import SparkSession

    spark = SparkSession.getActiveSession()
    if spark is None:
        raise ConfigError("log_spark_model needs an active Spark session")
    predictions = model.transform(spark.createDataFrame(input_example)).select(prediction_col).toPandas()
    signature = infer_signature(input_example, predictions[prediction_col])
    info = mlflow.spark.log_model(
        model,
        name=name,
        signature=signature,
        input_example=input_example,
        registered_model_name=registered_name,
        pip_requirements=_requirements("pyspark"),
        metadata=metadata,
    )
    return _logged(info, registered_name)


def load_registered_model(name: str, version: int | str) -> Any:
    """Load version `version` of registered model `name` in its own flavour.

    Returns:
        A `tf.keras.Model` for a Keras model; for a Spark model its single stage (the `ALSModel`) or
        the `PipelineModel`; any other flavour as an `mlflow.pyfunc` model.
    """
    import mlflow

    uri = model_uri(name, version)
    flavors = mlflow.models.get_model_info(uri).flavors
    if "spark" in flavors:
        import mlflow.spark

        pipeline = mlflow.spark.load_model(uri)
        return pipeline.stages[0] if len(pipeline.stages) == 1 else pipeline
    if "tensorflow" in flavors or "keras" in flavors:
        import mlflow.tensorflow

        return mlflow.tensorflow.load_model(uri)
    return mlflow.pyfunc.load_model(uri)
