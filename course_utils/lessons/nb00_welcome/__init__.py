"""Notebook 00_welcome: Welcome: sequences, shapes and checks.

- ``checks``: the exercises, their cases and mistake catalogues
- ``reference``: correct implementations of the exercises
"""
