"""Window loaders: how a training worker turns its shard of the windows into a `tf.data.Dataset`.

`PetastormLoader` materializes a Spark DataFrame once with Petastorm's `make_spark_converter` (the
cache under the lake, `petastorm.spark.converter.parentCacheDirUrl`) and reads it per worker with
`make_tf_dataset(cur_shard=, shard_count=)`. `ArrowLoader` reads the same Parquet files with a
pyarrow dataset, sharding row groups the same way: the fallback while Petastorm (0.13.1, the last
release) pins pyarrow. Both are picklable, so the driver builds them and the barrier tasks use them,
and both repeat forever: the trainer fixes `steps_per_epoch` so no worker runs out before the others.

A worker whose shard is at most `memory_cache_bytes` (uncompressed, from the Parquet footers) reads it
once and serves every epoch from memory, reshuffled each epoch (Petastorm: one pass of
`make_batch_reader`, the reader `make_tf_dataset` is built on, with the same `cur_shard`/`shard_count`);
a larger shard is streamed from Parquet every epoch (Petastorm: `make_tf_dataset`). Streaming runs at
0.2-0.35 of in-memory speed (docs/benchmarks.md, "Input pipeline"), so a shard that fits is read once.

Every shard needs row groups: `check_shards` counts them (Parquet footers only) and raises a clear
error instead of letting a worker wait on an empty shard.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from replenish.errors import ValidationError
from replenish.neural.settings import DEFAULT_MEMORY_CACHE_BYTES

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

MODEL_COLUMNS: tuple[str, ...] = (
    "history",
    "future",
    "target",
    "target_mask",
    "scale",
    "category_bucket",
    "location_bucket",
    "projection",
)
"""The window columns a worker reads (the keys of `to_model_inputs`' batch)."""


class WindowLoader(Protocol):
    """The windows of one split as per-worker `tf.data` pipelines."""

    rows: int
    row_groups: int

    def dataset(
        self, *, cur_shard: int | None, shard_count: int | None, batch_size: int, shuffle: bool, seed: int
    ) -> contextlib.AbstractContextManager[Any]:
        """A context manager yielding a repeating `tf.data.Dataset` of column-dict batches."""
        ...


def _row_groups(file_urls: list[str]) -> list[tuple[str, int, int, int]]:
    """(file, row group index, rows, uncompressed bytes) of every row group, from the Parquet footers."""
    import pyarrow.parquet as pq

    groups = []
    for url in file_urls:
        path = url[len("file:") :] if url.startswith("file:") else url
        path = "/" + path.lstrip("/") if url.startswith("file:") else path
        metadata = pq.ParquetFile(path).metadata
        groups += [
            (path, index, metadata.row_group(index).num_rows, metadata.row_group(index).total_byte_size)
            for index in range(metadata.num_row_groups)
        ]
    return [group for group in groups if group[2] > 0]


def _shard_fits(total_bytes: int, shard_count: int | None, memory_cache_bytes: int) -> bool:
    """Whether one worker's share of `total_bytes` is within `memory_cache_bytes` (0: never)."""
    return memory_cache_bytes > 0 and total_bytes / max(shard_count or 1, 1) <= memory_cache_bytes


def _in_memory(batches: Iterator[dict[str, np.ndarray]], *, batch_size: int, shuffle: bool, seed: int) -> Any:
    """A repeating dataset of one pass of column batches, held in memory; shuffled anew each epoch."""
    from replenish.neural.tf_runtime import tf

    parts = list(batches)
    columns = {name: np.concatenate([part[name] for part in parts]) for name in MODEL_COLUMNS}
    dataset = tf.data.Dataset.from_tensor_slices(columns)
    if shuffle:
        dataset = dataset.shuffle(len(columns[MODEL_COLUMNS[0]]), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).repeat().prefetch(tf.data.AUTOTUNE)


def check_shards(row_groups: int, shard_count: int, *, what: str = "training windows") -> None:
    """Raise ValidationError when `shard_count` workers cannot each get a row group."""
    if row_groups < shard_count:
        raise ValidationError(
            f"the {what} have {row_groups} Parquet row group(s) for {shard_count} workers: every worker needs "
            "at least one (lower forecast.lstm.row_group_bytes or forecast.lstm.workers, or add series)"
        )


@dataclass
class PetastormLoader:
    """Windows materialized by `make_spark_converter`, read with `make_tf_dataset` per shard."""

    converter: Any
    rows: int
    row_groups: int
    bytes: int = 0
    memory_cache_bytes: int = DEFAULT_MEMORY_CACHE_BYTES

    @classmethod
    def from_dataframe(
        cls,
        df: DataFrame,
        *,
        cache_dir: str,
        row_group_bytes: int,
        min_row_groups: int = 1,
        memory_cache_bytes: int = DEFAULT_MEMORY_CACHE_BYTES,
    ) -> PetastormLoader:
        """Materialize `df`'s `MODEL_COLUMNS` under `cache_dir` (a file: URI) as Parquet for Petastorm.

        The frame is repartitioned to at least `min_row_groups` files so every shard gets row groups;
        `check_shards` still verifies the result.
        """
        from petastorm.spark import SparkDatasetConverter, make_spark_converter

        spark = df.sparkSession
        spark.conf.set(SparkDatasetConverter.PARENT_CACHE_DIR_URL_CONF, cache_dir)
        frame = df.select(*MODEL_COLUMNS)
        if frame.rdd.getNumPartitions() < min_row_groups:
            frame = frame.repartition(min_row_groups)
        converter = make_spark_converter(frame, parquet_row_group_size_bytes=row_group_bytes, dtype="float32")
        groups = _row_groups(list(converter.file_urls))
        return cls(
            converter=converter,
            rows=len(converter),
            row_groups=len(groups),
            bytes=sum(group[3] for group in groups),
            memory_cache_bytes=memory_cache_bytes,
        )

    @contextlib.contextmanager
    def dataset(
        self, *, cur_shard: int | None, shard_count: int | None, batch_size: int, shuffle: bool, seed: int
    ) -> Iterator[Any]:
        if shard_count:
            check_shards(self.row_groups, shard_count)
        shard = {"cur_shard": cur_shard, "shard_count": shard_count} if shard_count else {}
        if _shard_fits(self.bytes, shard_count, self.memory_cache_bytes):
            # the reader `make_tf_dataset` wraps, without its element-by-element re-batching (docs/lstm.md)
            from petastorm import make_batch_reader

            files = list(self.converter.file_urls)
            with make_batch_reader(files, num_epochs=1, workers_count=1, shuffle_row_groups=False, **shard) as reader:
                batches = ({name: getattr(batch, name) for name in MODEL_COLUMNS} for batch in reader)
                in_memory = _in_memory(batches, batch_size=batch_size, shuffle=shuffle, seed=seed)
            yield in_memory
            return
        kwargs: dict[str, Any] = {"workers_count": 1, "num_epochs": None, "batch_size": batch_size, **shard}
        if shuffle:
            kwargs.update(shuffling_queue_capacity=batch_size * 8, seed=seed)
        with self.converter.make_tf_dataset(**kwargs) as dataset:
            yield dataset.map(lambda batch: {name: getattr(batch, name) for name in MODEL_COLUMNS})

    def delete(self) -> None:
        """Remove the materialized cache."""
        self.converter.delete()


@dataclass
class ArrowLoader:
    """The same Parquet files read with pyarrow; row group i belongs to shard i % shard_count."""

    groups: list[tuple[str, int, int, int]] = field(default_factory=list)
    memory_cache_bytes: int = DEFAULT_MEMORY_CACHE_BYTES

    @classmethod
    def from_files(cls, file_urls: list[str], *, memory_cache_bytes: int = DEFAULT_MEMORY_CACHE_BYTES) -> ArrowLoader:
        return cls(groups=_row_groups(file_urls), memory_cache_bytes=memory_cache_bytes)

    @classmethod
    def from_dataframe(
        cls,
        df: DataFrame,
        *,
        cache_dir: str,
        row_group_bytes: int,
        min_row_groups: int = 1,
        memory_cache_bytes: int = DEFAULT_MEMORY_CACHE_BYTES,
    ) -> ArrowLoader:
        """Write `df`'s `MODEL_COLUMNS` as Parquet under `cache_dir` (a fresh folder) and index it."""
        frame = df.select(*MODEL_COLUMNS)
        if frame.rdd.getNumPartitions() < min_row_groups:
            frame = frame.repartition(min_row_groups)
        frame.write.mode("overwrite").option("parquet.block.size", row_group_bytes).parquet(cache_dir)
        files = list(df.sparkSession.read.parquet(cache_dir).inputFiles())
        return cls.from_files(files, memory_cache_bytes=memory_cache_bytes)

    @property
    def rows(self) -> int:  # type: ignore[override]
        return sum(group[2] for group in self.groups)

    @property
    def row_groups(self) -> int:  # type: ignore[override]
        return len(self.groups)

    @property
    def bytes(self) -> int:
        return sum(group[3] for group in self.groups)

    def batches(self, *, cur_shard: int | None, shard_count: int | None, seed: int, shuffle: bool) -> Iterator[dict]:
        """Column-dict numpy batches of one pass over the shard's row groups."""
        import pyarrow.parquet as pq

        mine = [g for i, g in enumerate(self.groups) if not shard_count or i % shard_count == cur_shard]
        order = np.random.default_rng(seed).permutation(len(mine)) if shuffle else range(len(mine))
        for index in order:
            path, group = mine[index][:2]
            table = pq.ParquetFile(path).read_row_group(group, columns=list(MODEL_COLUMNS))
            yield {name: _column(table.column(name)) for name in MODEL_COLUMNS}

    @contextlib.contextmanager
    def dataset(
        self, *, cur_shard: int | None, shard_count: int | None, batch_size: int, shuffle: bool, seed: int
    ) -> Iterator[Any]:
        from replenish.neural.tf_runtime import tf

        if shard_count:
            check_shards(self.row_groups, shard_count)
        if _shard_fits(self.bytes, shard_count, self.memory_cache_bytes):
            one_pass = self.batches(cur_shard=cur_shard, shard_count=shard_count, seed=seed, shuffle=False)
            yield _in_memory(one_pass, batch_size=batch_size, shuffle=shuffle, seed=seed)
            return
        first = next(self.batches(cur_shard=cur_shard, shard_count=shard_count, seed=seed, shuffle=False))
        signature = {
            name: tf.TensorSpec((None, *value.shape[1:]), tf.as_dtype(value.dtype)) for name, value in first.items()
        }
        epoch = [0]

        def generate() -> Iterator[dict]:
            epoch[0] += 1
            yield from self.batches(cur_shard=cur_shard, shard_count=shard_count, seed=seed + epoch[0], shuffle=shuffle)

        dataset = tf.data.Dataset.from_generator(generate, output_signature=signature).unbatch()
        if shuffle:
            dataset = dataset.shuffle(batch_size * 8, seed=seed)
        yield dataset.batch(batch_size).repeat().prefetch(tf.data.AUTOTUNE)


def _column(column: Any) -> np.ndarray:
    """A Parquet column as numpy: list columns as a 2-D float32 array, others as 1-D."""
    import pyarrow as pa

    chunk = column.combine_chunks()
    if pa.types.is_list(chunk.type) or pa.types.is_large_list(chunk.type):
        flat = chunk.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
        return flat.reshape(len(chunk), -1) if len(chunk) else flat.reshape(0, 0)
    values = chunk.to_numpy(zero_copy_only=False)
    return values.astype(np.float32) if values.dtype == np.float64 else values
