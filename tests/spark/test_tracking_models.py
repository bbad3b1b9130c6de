"""Models logged, registered with versions and loaded back by `models:/name/version`: tiny real ones."""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # before TensorFlow is imported: tf.keras is tf-keras

import numpy as np
import pandas as pd
import pytest

from replenish.tracking.models import load_registered_model, log_keras_model, log_spark_model

pytestmark = [pytest.mark.spark]


@pytest.fixture()
def mlflow_run(tmp_path):
    import mlflow

    mlflow.set_experiment("replenish-model-test")
    with mlflow.start_run() as run:
        yield run


def test_a_tf_keras_model_is_registered_with_versions_signature_and_example(mlflow_run) -> None:
    import mlflow
    import tensorflow as tf

    tf.keras.utils.set_random_seed(7)
    model = tf.keras.Sequential([tf.keras.Input(shape=(6, 2)), tf.keras.layers.LSTM(4), tf.keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    windows = np.random.default_rng(1).normal(size=(16, 6, 2)).astype("float32")
    model.fit(windows, windows[:, -1, :1], epochs=1, verbose=0)

    first = log_keras_model(model, input_example=windows[:3], registered_name="test-lstm")
    second = log_keras_model(model, input_example=windows[:3], registered_name="test-lstm")
    assert (first.version, second.version) == (1, 2)
    assert second.uri == "models:/test-lstm/2" and second.run_id == mlflow_run.info.run_id

    info = mlflow.models.get_model_info(second.uri)
    assert info.flavors["tensorflow"]["model_type"] == "keras"
    assert list(info.signature.inputs.to_dict()[0]["tensor-spec"]["shape"]) == [-1, 6, 2]
    assert list(info.signature.outputs.to_dict()[0]["tensor-spec"]["shape"]) == [-1, 1]
    assert info.saved_input_example_info is not None

    loaded = load_registered_model("test-lstm", 2)
    assert isinstance(loaded, tf.keras.Model)
    np.testing.assert_allclose(loaded.predict(windows, verbose=0), model.predict(windows, verbose=0), rtol=1e-5)


def test_a_spark_als_model_is_registered_and_predicts_alike_after_loading(spark, mlflow_run) -> None:
    import mlflow
    from pyspark.ml.recommendation import ALS, ALSModel

    ratings = spark.createDataFrame(
        [
            (user, item, float(1 + (user + item) % 3))
            for user in range(4)
            for item in range(5)
            if (user * item) % 4 != 1
        ],
        "user int, item int, rating float",
    )
    als = ALS(rank=2, maxIter=3, seed=11, userCol="user", itemCol="item", ratingCol="rating", coldStartStrategy="drop")
    model = als.fit(ratings)
    example = pd.DataFrame({"user": [0, 1, 2], "item": [0, 2, 4]}).astype("int32")

    logged = log_spark_model(model, input_example=example, registered_name="test-als")
    assert logged.version == 1 and logged.uri == "models:/test-als/1"
    info = mlflow.models.get_model_info(logged.uri)
    assert "spark" in info.flavors
    assert [column["name"] for column in info.signature.inputs.to_dict()] == ["user", "item"]
    assert info.signature.outputs.to_dict()[0]["type"] == "float"

    loaded = load_registered_model("test-als", 1)
    assert isinstance(loaded, ALSModel) and loaded.rank == 2
    frame = spark.createDataFrame(example)
    expected = model.transform(frame).orderBy("user").toPandas()["prediction"]
    actual = loaded.transform(frame).orderBy("user").toPandas()["prediction"]
    np.testing.assert_allclose(actual, expected, rtol=1e-6)
