"""Running notebooks with nbclient: for maintainers (saving solution outputs) and tests."""
from __future__ import annotations

import os
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from .release import ROOT


def execute(nb: nbformat.NotebookNode, cwd: Path, timeout: int = 600, allow_errors: bool = False,
            save_figures: bool = False):
    """Execute a notebook in a fresh kernel of this Python; returns it with outputs."""
    if save_figures:
        os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
        # The course's matrices are small: one BLAS/torch thread is as fast on an idle machine
        # and many times faster on a busy one (measured: 15 s against 250 s for notebook 08).
        os.environ.setdefault("OMP_NUM_THREADS", "1")
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
