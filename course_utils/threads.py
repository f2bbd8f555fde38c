"""How many threads NumPy's BLAS and PyTorch use: one, chosen when ``course_utils`` is imported.

The course's matrices are small (a batch of 32 by a hidden size of 64): a second thread saves
little on a quiet machine, and on a busy one (a laptop doing other work, a shared server, the
tests running beside the notebook) threads that wait for each other on taken cores make
training many times slower. Measured on two cores with two other busy processes: notebook 08's
Run All took 67-178 s with the libraries' defaults and about 20 s with one thread.

So ``import course_utils`` (which every notebook does) sets one thread, unless you chose:

- a thread count in the environment (``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``,
  ``OPENBLAS_NUM_THREADS`` or ``COURSE_THREADS``) is respected as it is; ``COURSE_THREADS=0``
  leaves every library at its default;
- ``torch.set_num_threads(n)`` in your notebook, after the imports, always wins.

NumPy-only notebooks never import PyTorch for this: its thread count is set when PyTorch is
imported, by whoever imports it first.
"""
from __future__ import annotations

import importlib.abc
import os
import sys

ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
COURSE_ENV = "COURSE_THREADS"
DEFAULT = 1

#: what ``configure`` decided: ``{"threads": n or None, "source": why}``; None means "left alone".
chosen: dict = {}


def user_choice() -> tuple[int | None, str] | None:
    """The thread count that the learner chose in the environment, or None if they chose none.

    Returns ``(n, variable)``; n is None for ``COURSE_THREADS=0`` ("leave the defaults").
    """
    value = os.environ.get(COURSE_ENV, "").strip()
    if value:
        try:
            n = int(value)
        except ValueError:
            n = DEFAULT
        return (n if n > 0 else None), COURSE_ENV
    for name in ENV_VARS:
        value = os.environ.get(name, "").strip()
        if value:
            try:
                return max(1, int(value.split(",")[0])), name
            except ValueError:
                return None, name
    return None


def configure() -> dict:
    """Choose the thread count once per process (called by ``import course_utils``)."""
    if chosen:
        return chosen
    choice = user_choice()
    if choice is None:
        n, source = DEFAULT, "course default"
        for name in ENV_VARS:  # libraries loaded later (and child processes) read these
            os.environ[name] = str(n)
        os.environ[COURSE_ENV] = str(n)
        _limit_loaded_libraries(n)
    else:
        n, source = choice
        if source == COURSE_ENV and n is not None:
            for name in ENV_VARS:
                os.environ.setdefault(name, str(n))
            _limit_loaded_libraries(n)
    chosen.update(threads=n, source=source)
    if n is not None:
        if "torch" in sys.modules:
            _set_torch_threads(sys.modules["torch"])
        else:
            _install_torch_hook()
    return chosen


def _limit_loaded_libraries(n: int) -> None:
    """Limit the BLAS and OpenMP libraries already loaded (NumPy's, usually)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # an older environment: the environment variables still act on new loads
        return
    try:
        threadpool_limits(limits=n)
    except Exception:  # noqa: BLE001 - a library threadpoolctl cannot drive is left as it is
        pass


def _set_torch_threads(torch) -> None:
    n = chosen.get("threads")
    if n is None or not hasattr(torch, "set_num_threads"):
        return
    try:
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
    except Exception:  # noqa: BLE001 - never let thread tuning break an import
        pass


class _TorchHook(importlib.abc.MetaPathFinder):
    """Sets PyTorch's thread count right after ``import torch`` finishes, then removes itself."""

    _busy = False

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "torch" or self._busy:
            return None
        import importlib.util

        self._busy = True  # find the real spec with the other finders
        try:
            spec = importlib.util.find_spec("torch")
        finally:
            self._busy = False
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        original = loader.exec_module
        hook = self

        def exec_module(module, _original=original):
            hook._remove()  # only once torch is really imported (find_spec alone does not count)
            _original(module)
            _set_torch_threads(module)

        try:
            loader.exec_module = exec_module
        except (AttributeError, TypeError):
            return spec
        return spec

    def _remove(self):
        try:
            sys.meta_path.remove(self)
        except ValueError:
            pass


def _install_torch_hook() -> None:
    if not any(isinstance(f, _TorchHook) for f in sys.meta_path):
        sys.meta_path.insert(0, _TorchHook())
