"""replenish: demand forecasting and inventory optimization on Spark and Delta Lake."""

from replenish.errors import ConfigError, ReplenishError, ValidationError

__version__ = "0.1.0"
__all__ = ["ConfigError", "ReplenishError", "ValidationError", "__version__"]
