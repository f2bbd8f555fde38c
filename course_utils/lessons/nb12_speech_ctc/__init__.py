"""Notebook 12_speech_ctc: Speech recognition without alignments: CTC.

- ``checks``: the exercises, their cases and mistake catalogues
- ``reference``: correct implementations of the exercises
- ``speech``: data and experiment plumbing
"""
