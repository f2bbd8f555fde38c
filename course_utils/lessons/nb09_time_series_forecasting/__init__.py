"""Notebook 09_time_series_forecasting: Time-series forecasting, honestly.

- ``checks``: the exercises, their cases and mistake catalogues
- ``reference``: correct implementations of the exercises
- ``forecasting``: data and experiment plumbing
"""
