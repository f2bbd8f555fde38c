"""Notebook 10_seq2seq: Sequence to sequence: normalising dates.

- ``checks``: the exercises, their cases and mistake catalogues
- ``reference``: correct implementations of the exercises
- ``dates``: data and experiment plumbing
- ``seq2seq``: data and experiment plumbing
- ``translation``: data and experiment plumbing
"""
