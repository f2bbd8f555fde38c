"""Notebook 06_gru_numpy: The GRU in NumPy.

- ``checks``: the exercises, their cases and mistake catalogues
- ``reference``: correct implementations of the exercises
"""
