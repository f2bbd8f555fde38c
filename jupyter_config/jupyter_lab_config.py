# The configuration of `make lab` (jupyter lab --config=jupyter_config/jupyter_lab_config.py).
# Learners' own ~/.jupyter settings still apply; this file only adds what the course needs.
import os

c = get_config()  # noqa: F821 - defined by Jupyter when it loads this file
COURSE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Serve the course root, so that notebooks/ and solutions/ can both be opened; open 00 first.
c.ServerApp.root_dir = COURSE_ROOT
c.LabApp.default_url = "/lab/tree/notebooks/00_welcome.ipynb"

# solutions/ is read-only in this server: running a solution never rewrites the answer key.
c.ServerApp.contents_manager_class = "course_utils.lab.CourseContentsManager"

# No "Would you like to receive official Jupyter news?" prompt, and no update checks: the defaults of
# lab-settings/overrides.json (a learner can still change them in Settings; their choice is kept).
c.LabApp.app_settings_dir = os.path.join(COURSE_ROOT, "jupyter_config", "lab-settings")
c.LabApp.news_url = None
c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"

# Kernels talk to the server over local sockets: no "running over TCP without encryption" warning.
# Unix socket paths are limited to about 100 characters: with a very long runtime folder, keep TCP.
from jupyter_core.paths import jupyter_runtime_dir  # noqa: E402

if os.name == "posix" and len(os.path.join(jupyter_runtime_dir(), "kernel-" + "0" * 36 + "-ipc-10")) < 100:
    c.KernelManager.transport = "ipc"
