"""Notebook 02_bptt: Backpropagation through time.

- ``checks``: the exercises, their cases and mistake catalogues
- ``reference``: correct implementations of the exercises
"""
