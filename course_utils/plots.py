"""Figures used by several notebooks. Every function draws on a new or given Axes and returns it.

Shapes: N batch, T time steps, H hidden size.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
