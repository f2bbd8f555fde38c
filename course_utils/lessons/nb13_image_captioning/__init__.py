"""Notebook 13_image_captioning: Image captioning: a recurrent decoder conditioned on an image.

- ``checks``: the exercises, their cases and mistake catalogues
- ``reference``: correct implementations of the exercises
- ``captioning``: data and experiment plumbing
"""
