"""One error hierarchy, so callers can catch everything replenish raises on purpose."""

from __future__ import annotations


class ReplenishError(Exception):
    """Base class of the errors replenish raises deliberately."""


class ConfigError(ReplenishError, ValueError):
    """A profile, option or `--set` override is invalid; the message names the key."""


class ValidationError(ReplenishError, ValueError):
    """Input data breaks the contract; the message names the file, row or field."""


class LakeError(ReplenishError):
    """A Delta table cannot be read or written as asked."""


class ConcurrentWriteError(LakeError):
    """Another writer committed a conflicting change first; this write committed nothing."""
