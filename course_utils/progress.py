"""Progress bars: a widget in JupyterLab, VS Code and Colab; plain text where nothing draws widgets.

``from course_utils.progress import tqdm`` is ``tqdm.auto.tqdm``: in a Jupyter kernel it draws an
ipywidgets bar (no red "stderr" background), in a terminal it prints text. Where notebooks are run
without a browser (``python -m course_utils execute``, the tests, CI) nothing could draw a widget
and the saved notebook would keep widget state instead of a bar; there ``COURSE_PROGRESS=text``
(set by ``course_utils.notebooks.execute`` and ``make test``) gives text bars on stdout, which a
saved notebook shows as ordinary output, the last state of each bar only.
"""
from __future__ import annotations

import io
import os
import sys

ENV = "COURSE_PROGRESS"


def text_mode() -> bool:
    """Whether bars are text (``COURSE_PROGRESS=text``) rather than chosen by ``tqdm.auto``."""
    return os.environ.get(ENV, "").strip().lower() == "text"


if text_mode():
    from tqdm.std import tqdm as _std_tqdm

    class tqdm(_std_tqdm):  # noqa: N801 - the name everyone knows
        """tqdm's text bar, printed once, in its final state, on stdout when it closes: a saved
        notebook holds one line per bar (not one output per refresh), and nothing on stderr,
        which notebooks show on a red background."""

        def __init__(self, *args, **kwargs):
            kwargs["file"] = io.StringIO()  # nothing is drawn while it runs
            kwargs["mininterval"] = float("inf")
            kwargs.setdefault("ascii", False)
            super().__init__(*args, **kwargs)

        def close(self):
            if not self.disable:
                line = self.format_meter(**self.format_dict)
                super().close()
                print(line, file=sys.stdout, flush=True)
            else:
                super().close()
else:
    from tqdm.auto import tqdm  # noqa: F401 - re-exported

__all__ = ["tqdm", "text_mode"]
