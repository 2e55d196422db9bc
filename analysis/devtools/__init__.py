"""Maintenance tools for the repository (not used by analyses)."""
