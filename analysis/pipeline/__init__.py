"""The evaluation pipeline: fit every series once in-process, pool, write tables, render."""
