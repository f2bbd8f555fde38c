"""The course, one package per notebook, named like it: ``nb05_lstm_numpy`` is ``05_lstm_numpy.ipynb``.

Each package holds everything of its notebook:

- ``reference.py``: the correct implementations of its exercises (``course_utils.reference``
  finds them by name);
- ``checks.py``: its exercises, each defined at module level under its own name, with the cases
  that test it and its catalogue of known mistakes (``course_utils.check`` finds them);
- the notebook's own data and experiment plumbing (``memory_task.py``, ``sentiment.py``, ...).

The machinery they share lives apart: ``course_utils.checking`` (what an exercise is and how
it is judged), ``course_utils.grading``, ``course_utils.plots``, ``course_utils.release``.
docs/authoring.md says how to add an exercise, a mistake or a notebook.
"""
