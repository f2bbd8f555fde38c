"""Notebook 05_lstm_numpy: The LSTM in NumPy.

- ``checks``: the exercises, their cases and mistake catalogues
- ``reference``: correct implementations of the exercises
- ``memory_task``: data and experiment plumbing
"""
