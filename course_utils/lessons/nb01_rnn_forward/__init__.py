"""Notebook 01_rnn_forward: The RNN forward pass.

- ``checks``: the exercises, their cases and mistake catalogues
- ``reference``: correct implementations of the exercises
"""
