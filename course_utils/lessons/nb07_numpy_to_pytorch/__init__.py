"""Notebook 07_numpy_to_pytorch: From NumPy to PyTorch.

- ``checks``: the exercises, their cases and mistake catalogues
- ``reference``: correct implementations of the exercises
- ``speed``: data and experiment plumbing
"""
