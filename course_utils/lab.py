"""The JupyterLab that ``make lab`` starts: its contents manager keeps ``solutions/`` read-only.

``make lab`` serves the course root, so that ``notebooks/`` (yours) and ``solutions/`` (the worked
answers that notebook 00 points to) can both be opened. Running a solution notebook changes its
outputs; saving them would rewrite ``solutions/`` and leave ``git status`` dirty. So, in this
server, everything under ``solutions/`` is shown read-only: it runs as usual, nothing saves
into it, and "File > Save Notebook As..." keeps a copy elsewhere (say ``notebooks/scratch/``).
The configuration is ``jupyter_config/jupyter_lab_config.py``.
"""
from __future__ import annotations

from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
from tornado.web import HTTPError

READ_ONLY = ("solutions",)
MESSAGE = ("{path} is read-only here: solutions/ is the course's answer key and stays as it is in git. "
           "Use File > Save Notebook As... to keep a copy in notebooks/.")


def is_read_only(path: str) -> bool:
    """Whether an API path (relative to the served root, '/'-separated) lies in a read-only folder."""
    parts = [p for p in str(path).strip("/").split("/") if p]
    return bool(parts) and parts[0] in READ_ONLY


class CourseContentsManager(AsyncLargeFileManager):
    """The default contents manager, with ``solutions/`` read-only (see the module docstring)."""

    def is_writable(self, path):
        """False in ``solutions/``; elsewhere as the default contents manager says."""
        return not is_read_only(path) and super().is_writable(path)

    def _refuse(self, path):
        if is_read_only(path):
            raise HTTPError(403, MESSAGE.format(path=str(path).strip("/")))

    async def save(self, model, path=""):
        self._refuse(path)
        return await super().save(model, path)

    async def delete_file(self, path):
        self._refuse(path)
        return await super().delete_file(path)

    async def rename_file(self, old_path, new_path):
        self._refuse(old_path)
        self._refuse(new_path)
        return await super().rename_file(old_path, new_path)

    async def new(self, model=None, path=""):
        self._refuse(path)
        return await super().new(model, path)
