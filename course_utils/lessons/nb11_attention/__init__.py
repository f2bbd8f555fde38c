"""Notebook 11_attention: Attention.

- ``checks``: the exercises, their cases and mistake catalogues
- ``reference``: correct implementations of the exercises
"""
