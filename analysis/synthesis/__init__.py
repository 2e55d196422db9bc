"""Synthesis across provinces: pooling, multiplicity, sensitivity and power."""
