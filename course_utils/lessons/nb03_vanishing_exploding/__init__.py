"""Notebook 03_vanishing_exploding: Vanishing and exploding gradients.

- ``checks``: the exercises, their cases and mistake catalogues
- ``reference``: correct implementations of the exercises
- ``gradients``: data and experiment plumbing
"""
