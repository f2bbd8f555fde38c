"""The check framework, shared by every notebook: what an exercise is and how it is judged.

- ``core``: cases, mistakes, verdicts and the words of a verdict (``Case``, ``Mistake``, ``Verdict``).
- ``exercise``: ``Exercise`` and its NumPy kinds (``FunctionExercise``, ``BackwardExercise``).
- ``exercise_torch``: the PyTorch kinds (``TorchExercise``, ``GreedyOutputExercise``).
- ``conventions``: how the learner's code is called on a case, by name; the grader's sandboxed
  child runs this same file, so a self-check and a grade call the code the same way.
- ``variants``: wrong recurrences shared by the RNN, LSTM and GRU mistake catalogues.
- ``registry``: finds every exercise of every notebook (``course_utils/lessons/nbNN_*/checks.py``).

The exercises themselves live with their notebook, in ``course_utils/lessons``.
"""
