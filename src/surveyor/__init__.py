"""Surveyor: network asset discovery console built around its task system."""

__version__ = "0.1.0"
