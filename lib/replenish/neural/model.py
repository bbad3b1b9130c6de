"""The global LSTM forecaster: an LSTM encoder and a direct multi-horizon quantile head (tf-keras).

Per window the encoder reads the scaled history (demand / scale, an observed flag, the covariates);
its final state, joined with the static features (hashed category and location embeddings and the
item-factor projection), conditions a decoder that sees each forecast period's known covariates and
its position, and outputs the `QUANTILES` of demand / scale at every horizon step. With
`seasonal_base` the median is a correction to the seasonal profile of the window's own history
(`seasonal_profile`: for daily data the weekday means of the last eight weeks), which the decoder
also sees: on a small catalogue the network then need not learn each series' weekly shape from its
final LSTM state (docs/lstm.md: where it helps and where it hurts). Quantiles cannot cross: the others
are the median plus or minus cumulative softplus gaps.

Plain tf-keras; nothing here knows about Spark. Import it only where TensorFlow may load
(`tf_runtime` sets `TF_USE_LEGACY_KERAS=1` first: Keras 3 `fit` fails under MultiWorkerMirroredStrategy).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from replenish.neural.settings import QUANTILES
from replenish.neural.tf_runtime import keras, tf
from replenish.neural.windows import COVARIATES, HISTORY_CHANNELS


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild the network (saved next to its weights as spec.json)."""

    history: int
    horizon: int
    hidden: int = 32
    embedding_dim: int = 4
    hash_buckets: int = 64
    projection_dim: int = 4
    use_covariates: bool = True
    quantiles: tuple[float, ...] = QUANTILES
    season: int = 1
    seasonal_base: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelSpec:
        raw = json.loads(text)
        raw["quantiles"] = tuple(raw["quantiles"])
        return cls(**raw)

    @property
    def profile_season(self) -> int:
        """The season the profile averages over: `season`, or 1 where the history is shorter than one."""
        return self.season if 1 <= self.season <= self.history else 1


def seasonal_profile(history: Any, spec: ModelSpec) -> Any:
    """Per forecast step, the mean scaled demand of the same phase of the season over the history.

    `history` is the model's (batch, history, channels) input: scaled demand (0 where not observed)
    and the observed flag first. The last `history // m` whole seasons before the origin are
    averaged phase by phase over their observed periods (m = 7 for daily data: the weekday profile
    of the last 8 weeks); a phase never observed takes the mean of every observed period. Returns
    (batch, horizon, 1): the profile repeated over the horizon, phase-aligned with the origin.
    """
    m = spec.profile_season
    seasons = spec.history // m
    demand, observed = history[:, -seasons * m :, 0], history[:, -seasons * m :, 1]
    sums = tf.reduce_sum(tf.reshape(demand * observed, [-1, seasons, m]), axis=1)
    counts = tf.reduce_sum(tf.reshape(observed, [-1, seasons, m]), axis=1)
    total = tf.reduce_sum(history[..., 0] * history[..., 1], axis=1, keepdims=True)
    level = total / tf.maximum(tf.reduce_sum(history[..., 1], axis=1, keepdims=True), 1.0)
    profile = tf.where(counts > 0, sums / tf.maximum(counts, 1.0), level)
    repeats = -(-spec.horizon // m)
    return tf.tile(profile, [1, repeats])[:, : spec.horizon, None]


def pinball_loss(quantiles: tuple[float, ...] = QUANTILES) -> Any:
    """The mean pinball (quantile) loss over the observed target periods.

    `y_true` is (batch, horizon, 2): the scaled target and its mask (0: censored or unknown, left
    out of the loss); `y_pred` is (batch, horizon, len(quantiles)). Returns one value per window.
    """
    q = tf.constant(quantiles, dtype=tf.float32)

    def loss(y_true: Any, y_pred: Any) -> Any:
        target = y_true[..., 0:1]
        mask = y_true[..., 1]
        error = target - y_pred
        per_quantile = tf.maximum(q * error, (q - 1.0) * error)
        per_step = tf.reduce_sum(per_quantile, axis=-1) * mask
        return tf.reduce_sum(per_step, axis=-1) / tf.maximum(tf.reduce_sum(mask, axis=-1), 1.0)

    loss.__name__ = "pinball"
    return loss


def _monotone_quantiles(raw: Any, base: Any = None) -> Any:
    """Map the head's raw outputs to non-crossing quantiles around the median (index 2 of 5).

    The median is the raw output, plus `base` (the seasonal profile) where the model has one.
    """
    median = raw[..., 2:3] if base is None else raw[..., 2:3] + base
    gaps = tf.nn.softplus(raw[..., 0:2])  # below: [P2.5 gap, P10 gap]
    above = tf.nn.softplus(raw[..., 3:5])  # above: [P90 gap, P97.5 gap]
    p10 = median - gaps[..., 1:2]
    p025 = p10 - gaps[..., 0:1]
    p90 = median + above[..., 0:1]
    p975 = p90 + above[..., 1:2]
    return tf.concat([p025, p10, median, p90, p975], axis=-1)


def build_model(spec: ModelSpec, *, seed: int = 42) -> Any:
    """The network of `spec` (uncompiled). Inputs: history, future, category, location, projection."""
    if len(spec.quantiles) != 5:
        raise ValueError(f"the head outputs 5 quantiles, got {spec.quantiles}")
    init = keras.initializers.GlorotUniform(seed=seed)
    history = keras.Input((spec.history, HISTORY_CHANNELS), name="history")
    future = keras.Input((spec.horizon, len(COVARIATES)), name="future")
    category = keras.Input((), dtype="int32", name="category")
    location = keras.Input((), dtype="int32", name="location")
    projection = keras.Input((spec.projection_dim,), name="projection")

    encoder_in = history if spec.use_covariates else keras.layers.Lambda(lambda x: x[..., :2])(history)
    encoded = keras.layers.LSTM(spec.hidden, kernel_initializer=init, name="encoder")(encoder_in)
    embed_cat = keras.layers.Embedding(spec.hash_buckets, spec.embedding_dim, name="category_embedding")(category)
    embed_loc = keras.layers.Embedding(spec.hash_buckets, spec.embedding_dim, name="location_embedding")(location)
    context = keras.layers.Concatenate()([encoded, embed_cat, embed_loc, projection])
    context = keras.layers.Dense(spec.hidden, activation="relu", kernel_initializer=init, name="context")(context)
    repeated = keras.layers.RepeatVector(spec.horizon)(context)
    steps = keras.layers.Lambda(
        lambda x: tf.tile(tf.eye(spec.horizon)[None], [tf.shape(x)[0], 1, 1]), name="step_position"
    )(context)
    parts = [repeated, steps, future] if spec.use_covariates else [repeated, steps]
    profile = None
    if spec.seasonal_base:
        profile = keras.layers.Lambda(lambda x: seasonal_profile(x, spec), name="seasonal_profile")(history)
        parts.append(profile)
    decoder = keras.layers.Concatenate()(parts)
    decoder = keras.layers.Dense(spec.hidden, activation="relu", kernel_initializer=init, name="decoder")(decoder)
    raw = keras.layers.Dense(5, kernel_initializer=init, name="quantile_head")(decoder)
    if profile is None:
        outputs = keras.layers.Lambda(_monotone_quantiles, name="quantiles")(raw)
    else:
        outputs = keras.layers.Lambda(lambda x: _monotone_quantiles(x[0], x[1]), name="quantiles")([raw, profile])
    return keras.Model(
        inputs={
            "history": history,
            "future": future,
            "category": category,
            "location": location,
            "projection": projection,
        },
        outputs=outputs,
        name="lstm_forecaster",
    )


def compile_model(model: Any, spec: ModelSpec, *, learning_rate: float) -> Any:
    """Adam and the pinball loss; returns `model`."""
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=pinball_loss(spec.quantiles))
    return model


def to_model_inputs(batch: dict[str, Any], spec: ModelSpec) -> tuple[dict[str, Any], Any]:
    """Map a batch of window columns (tensors) to (inputs, y_true), scaling demand by the window's scale.

    Works on tf tensors inside `tf.data.Dataset.map` and on numpy arrays.
    """
    scale = tf.reshape(tf.cast(batch["scale"], tf.float32), [-1, 1, 1])
    history = tf.reshape(tf.cast(batch["history"], tf.float32), [-1, spec.history, HISTORY_CHANNELS])
    history = tf.concat([history[..., 0:1] / scale, history[..., 1:]], axis=-1)
    future = tf.reshape(tf.cast(batch["future"], tf.float32), [-1, spec.horizon, len(COVARIATES)])
    target = tf.reshape(tf.cast(batch["target"], tf.float32), [-1, spec.horizon, 1]) / scale
    mask = tf.reshape(tf.cast(batch["target_mask"], tf.float32), [-1, spec.horizon, 1])
    projection = tf.reshape(tf.cast(batch["projection"], tf.float32), [-1, spec.projection_dim])
    inputs = {
        "history": history,
        "future": future,
        "category": tf.cast(tf.reshape(batch["category_bucket"], [-1]), tf.int32),
        "location": tf.cast(tf.reshape(batch["location_bucket"], [-1]), tf.int32),
        "projection": projection,
    }
    return inputs, tf.concat([target, mask], axis=-1)


class LstmForecaster:
    """A trained network with `predict` in units: the `fit`/`predict` face of the model for one process.

    Example:
        ```python
        forecaster = LstmForecaster(spec).fit(train_dataset, epochs=5, steps_per_epoch=50)
        quantiles = forecaster.predict(window_columns)  # (windows, horizon, 5), units
        ```
    """

    def __init__(self, spec: ModelSpec, *, learning_rate: float = 0.005, seed: int = 42) -> None:
        self.spec = spec
        self.learning_rate = learning_rate
        self.seed = seed
        self.model_: Any = None

    def build(self) -> LstmForecaster:
        set_seeds(self.seed)
        self.model_ = compile_model(build_model(self.spec, seed=self.seed), self.spec, learning_rate=self.learning_rate)
        return self

    def fit(
        self,
        dataset: Any,
        *,
        epochs: int,
        steps_per_epoch: int,
        validation: Any = None,
        validation_steps: int | None = None,
        callbacks: list[Any] | None = None,
        verbose: int = 0,
    ) -> LstmForecaster:
        """Train on a `tf.data.Dataset` of `to_model_inputs` pairs (repeating; `steps_per_epoch` fixed)."""
        if self.model_ is None:
            self.build()
        self.history_ = self.model_.fit(
            dataset,
            epochs=epochs,
            steps_per_epoch=steps_per_epoch,
            validation_data=validation,
            validation_steps=validation_steps,
            callbacks=callbacks or [],
            verbose=verbose,
        ).history
        return self

    def predict(self, columns: dict[str, np.ndarray], *, batch_size: int = 1024) -> np.ndarray:
        """Quantiles in units, (windows, horizon, 5), never negative, for numpy window columns."""
        inputs, _ = to_model_inputs(columns, self.spec)
        scaled = self.model_.predict(inputs, batch_size=batch_size, verbose=0)
        scale = np.asarray(columns["scale"], dtype=np.float32).reshape(-1, 1, 1)
        return np.maximum(scaled * scale, 0.0)

    def save(self, path: str) -> None:
        """Weights (TensorFlow checkpoint format, any `tf.io.gfile` file system) and spec.json under `path`."""
        tf.io.gfile.makedirs(path)
        self.model_.save_weights(f"{path.rstrip('/')}/weights/model")
        with tf.io.gfile.GFile(f"{path.rstrip('/')}/spec.json", "w") as handle:
            handle.write(self.spec.to_json())

    @classmethod
    def load(cls, path: str) -> LstmForecaster:
        with tf.io.gfile.GFile(f"{path.rstrip('/')}/spec.json") as handle:
            spec = ModelSpec.from_json(handle.read())
        forecaster = cls(spec).build()
        forecaster.model_.load_weights(f"{path.rstrip('/')}/weights/model").expect_partial()
        return forecaster


def set_seeds(seed: int) -> None:
    """Seed Python, numpy and TensorFlow (op determinism is left off: it slows LSTMs on GPU)."""
    keras.utils.set_random_seed(seed)


def window_columns(frame: Any) -> dict[str, np.ndarray]:
    """Numpy window columns (as `to_model_inputs` wants them) from a pandas frame of window rows."""
    out: dict[str, np.ndarray] = {}
    for name in ("history", "future", "target", "target_mask", "projection"):
        values = frame[name].to_numpy()
        out[name] = np.stack([np.asarray(v, dtype=np.float32) for v in values]) if len(values) else np.zeros((0, 0))
    for name in ("scale", "category_bucket", "location_bucket"):
        out[name] = frame[name].to_numpy()
    return out
