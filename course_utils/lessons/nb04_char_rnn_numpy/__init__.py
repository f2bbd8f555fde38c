"""Notebook 04_char_rnn_numpy: A character-level language model in NumPy.

- ``checks``: the exercises, their cases and mistake catalogues
- ``reference``: correct implementations of the exercises
- ``char_lm``: data and experiment plumbing
"""
