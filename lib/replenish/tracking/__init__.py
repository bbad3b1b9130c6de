"""MLflow tracking of job runs, and the helpers that log, register and load models.

Importing this package does not import MLflow; the functions do, when called.
"""

from replenish.tracking.jobs import configure, track_job, tracking_config
from replenish.tracking.settings import TrackingConfig

__all__ = ["TrackingConfig", "configure", "track_job", "tracking_config"]
