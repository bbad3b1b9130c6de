"""Near-real-time inventory position: Structured Streaming over the bronze event tables.

`events` turns sales and inventory movements into one contract of stock changes, `position` keeps the
per-series position and finds reorder-point crossings (pure DataFrame transforms), `runner` wires them
into a checkpointed Delta-to-Delta stream whose every micro-batch commits exactly once.
"""
