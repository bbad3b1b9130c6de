"""The global LSTM: one sequence model trained on every series at once, distributed through Spark.

* `settings`: `LstmSettings` (the `forecast.lstm` section) and the quantiles.
* `windows`: training and inference windows built in Spark from `silver.demand`.
* `loader`: Petastorm and pyarrow window loaders (`tf.data` per worker shard).
* `model`: the tf-keras network, the pinball loss, `LstmForecaster` (fit / predict / save / load).
* `trainer`: `BarrierTrainer`, a barrier-stage launcher shaped like TorchDistributor.
* `train`: the per-worker training function (MultiWorkerMirroredStrategy).
* `inference`: `mapInPandas` forecasts, the model loaded once per Python worker.
* `pipeline`: the orchestration a job or notebook calls.

Importing this package does not import TensorFlow; `model`, `train` and `inference` load it lazily.
"""

from replenish.neural.settings import QUANTILES, LstmSettings

__all__ = ["QUANTILES", "LstmSettings"]
