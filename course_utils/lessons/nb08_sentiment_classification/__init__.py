"""Notebook 08_sentiment_classification: Sentiment classification: when word order matters.

- ``checks``: the exercises, their cases and mistake catalogues
- ``reference``: correct implementations of the exercises
- ``sentiment``: data and experiment plumbing
- ``training_torch``: data and experiment plumbing
"""
