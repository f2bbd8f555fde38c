"""Notebook 14_session_recommendation: Session-based recommendation: the next click.

- ``checks``: the exercises, their cases and mistake catalogues
- ``reference``: correct implementations of the exercises
- ``sessions``: data and experiment plumbing
"""
