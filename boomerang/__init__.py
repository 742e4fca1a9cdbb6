"""Boomerang: durable workflows for AI work that goes out to GPUs and comes back."""

__version__ = "0.1.0"
