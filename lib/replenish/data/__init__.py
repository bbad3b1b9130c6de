"""Synthetic data: the generator behind `replenish generate` and its reproducible random draws."""
