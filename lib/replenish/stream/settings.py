"""Settings of `replenish stream` (the `stream:` section)."""

from __future__ import annotations

from dataclasses import dataclass

from replenish.errors import ConfigError


@dataclass(frozen=True)
class StreamConfig:
    """How the inventory-position stream runs.

    Attributes:
        checkpoint: where the query keeps its offsets and commits; None: `<lake>/_checkpoints/inventory_position`.
            One checkpoint belongs to one `gold.inventory_position`: losing it means `--reset`.
        processing_time: the trigger interval of a continuous run, in Spark's words (`30 seconds`).
        max_files_per_trigger: at most this many new files per source in one micro-batch; None: Delta's
            default (1,000). Small values split a backlog into several batches.
    """

    checkpoint: str | None = None
    processing_time: str = "1 minute"
    max_files_per_trigger: int | None = None

    def __post_init__(self) -> None:
        if not self.processing_time.strip():
            raise ConfigError("stream.processing_time must be an interval such as '30 seconds'")
        if self.max_files_per_trigger is not None and self.max_files_per_trigger < 1:
            raise ConfigError(f"stream.max_files_per_trigger must be >= 1, got {self.max_files_per_trigger}")
