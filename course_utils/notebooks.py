"""Running notebooks with nbclient: for maintainers (saving solution outputs) and tests."""
from __future__ import annotations

import os
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from .progress import ENV as PROGRESS_ENV
from .release import ROOT


def execute(nb: nbformat.NotebookNode, cwd: Path, timeout: int = 600, allow_errors: bool = False,
            save_figures: bool = False):
    """Execute a notebook in a fresh kernel of this Python; returns it with outputs."""
    if save_figures:
        os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    # Nothing draws widgets here: progress bars are text on stdout (course_utils/progress.py), so
    # saved notebooks hold the bar's last state, not widget state or red stderr. Thread counts are
    # chosen by `import course_utils` (course_utils/threads.py), as in the learner's JupyterLab.
    os.environ.setdefault(PROGRESS_ENV, "text")
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=allow_errors,
                            resources={"metadata": {"path": str(cwd)}})
    client.execute()
    return nb


def execute_in_place(paths: list[Path], timeout: int = 600) -> int:
    """Run each solution notebook top to bottom and write it back with its outputs."""
    paths = paths or sorted((ROOT / "solutions").glob("*.ipynb"))
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        start = time.perf_counter()
        execute(nb, path.parent, timeout=timeout, save_figures=True)
        for cell in nb.cells:  # timing metadata would change on every run
            cell.get("metadata", {}).pop("execution", None)
        nbformat.write(nb, path)
        print(f"{path.name}: {time.perf_counter() - start:.1f} s")
    return 0
