"""Helpers of the recurrent neural networks course.

- ``check``: a self-check for every exercise (``check.rnn_forward(rnn_forward)``).
- ``reference``: correct implementations that the checks and the grader compare against.
- ``data``, ``char_lm``, ``memory_task``, ``sentiment``, ``forecasting``, ``dates``: data that is
  generated here or ships with a required package, and the plumbing of each notebook's
  experiment (batching, training loops, evaluation).
- ``gradients`` (notebook 03), ``speed`` (07), ``training_torch``, ``seq2seq``: experiments and
  training plumbing of the PyTorch notebooks; ``plots``: figures used by several notebooks.
- ``grading``: the instructor's grader (``python -m course_utils grade``, docs/grading.md).
- ``python -m course_utils release``: make ``notebooks/`` from ``solutions/``;
  ``python -m course_utils execute``: re-run solution notebooks and save their outputs.
- ``threads``: importing the package sets NumPy's and PyTorch's thread count to one, unless you
  chose one (``OMP_NUM_THREADS``, ``COURSE_THREADS``): see ``course_utils/threads.py`` for why.
"""
from __future__ import annotations

from . import threads as _threads

__version__ = "0.1.0"

_threads.configure()


def environment_report() -> dict[str, str]:
    """Print and return the versions that matter for the course, and the hardware in use."""
    import os
    import platform

    import matplotlib
    import numpy

    report = {"Python": platform.python_version(), "NumPy": numpy.__version__,
              "matplotlib": matplotlib.__version__}
    try:
        import torch

        report["PyTorch"] = torch.__version__
        report["GPU"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (CPU only, which is fine)"
    except ImportError:
        report["PyTorch"] = "not installed (needed from notebook 07 on)"
    report["CPU cores"] = str(os.cpu_count())
    threads = _threads.chosen.get("threads")
    report["Threads"] = (f"{threads} ({_threads.chosen.get('source')}; see course_utils/threads.py)"
                         if threads else "the libraries' defaults (COURSE_THREADS=0)")
    width = max(map(len, report))
    for k, v in report.items():
        print(f"{k:<{width}}  {v}")
    return report
