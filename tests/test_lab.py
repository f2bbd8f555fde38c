"""`make lab`'s JupyterLab (jupyter_config/) and the progress bars of notebooks run without a browser."""
import asyncio
import json
import os
import re
import socket
import subprocess
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request

import nbformat
import pytest
from tornado.web import HTTPError

from conftest import ROOT
from course_utils.lab import CourseContentsManager, is_read_only

CONFIG = ROOT / "jupyter_config" / "jupyter_lab_config.py"


def load_config():
    from traitlets.config.loader import PyFileConfigLoader

    return PyFileConfigLoader(CONFIG.name, str(CONFIG.parent)).load_config()


def test_make_lab_uses_the_course_configuration():
    makefile = (ROOT / "Makefile").read_text()
    lab = makefile.split("\nlab:", 1)[1].split("\n\n", 1)[0]
    assert "--config=jupyter_config/jupyter_lab_config.py" in lab and "notebooks/" not in lab.split("--config")[0]


def test_configuration_serves_the_root_opens_00_and_quiets_news_and_tcp():
    c = load_config()
    assert c.ServerApp.root_dir == str(ROOT)
    assert c.LabApp.default_url == "/lab/tree/notebooks/00_welcome.ipynb" and (ROOT / "notebooks/00_welcome.ipynb").exists()
    assert c.ServerApp.contents_manager_class == "course_utils.lab.CourseContentsManager"
    overrides = json.loads((ROOT / "jupyter_config" / "lab-settings" / "overrides.json").read_text())
    assert c.LabApp.app_settings_dir == str(ROOT / "jupyter_config" / "lab-settings")
    assert overrides["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"
    assert c.LabApp.news_url is None and c.LabApp.check_for_updates_class == "jupyterlab.NeverCheckForUpdate"
    assert c.KernelManager.transport == "ipc"  # the runtime folder of this machine is short enough


@pytest.mark.parametrize("path, expected", [("solutions/02_bptt.ipynb", True), ("/solutions", True),
                                            ("solutions", True), ("notebooks/02_bptt.ipynb", False),
                                            ("notebooks/solutions.ipynb", False), ("", False)])
def test_read_only_paths(path, expected):
    assert is_read_only(path) == expected


def test_solutions_are_read_only_and_notebooks_writable(tmp_path):
    for folder in ("solutions", "notebooks"):
        (tmp_path / folder).mkdir()
        nbformat.write(nbformat.v4.new_notebook(), tmp_path / folder / "01_x.ipynb")
    cm = CourseContentsManager(root_dir=str(tmp_path))
    run = asyncio.run
    solution = run(cm.get("solutions/01_x.ipynb"))
    assert solution["writable"] is False and run(cm.get("notebooks/01_x.ipynb"))["writable"] is True
    before = (tmp_path / "solutions/01_x.ipynb").read_bytes()
    for attempt in (lambda: cm.save(solution, "solutions/01_x.ipynb"),
                    lambda: cm.delete_file("solutions/01_x.ipynb"),
                    lambda: cm.rename_file("solutions/01_x.ipynb", "solutions/02_x.ipynb"),
                    lambda: cm.rename_file("notebooks/01_x.ipynb", "solutions/03_x.ipynb"),
                    lambda: cm.new(path="solutions/Untitled.ipynb")):
        with pytest.raises(HTTPError) as e:
            run(attempt())
        assert e.value.status_code == 403 and "Save Notebook As" in e.value.log_message
    assert (tmp_path / "solutions/01_x.ipynb").read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "solutions").iterdir()) == ["01_x.ipynb"]
    copy = run(cm.get("solutions/01_x.ipynb"))
    copy.pop("path"), copy.pop("name")
    run(cm.save(copy, "notebooks/01_x_solution.ipynb"))  # "Save As" into notebooks/ works
    assert (tmp_path / "notebooks/01_x_solution.ipynb").exists()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_live_server_opens_00_keeps_solutions_and_starts_kernels_without_tcp_warning(tmp_path):
    """`make lab`'s command line, on loopback: what a learner's terminal and browser get."""
    port, token = free_port(), "course-test"
    runtime = tempfile.mkdtemp(prefix="jr", dir="/tmp")  # short: Unix socket paths are limited
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": runtime, "JUPYTER_DATA_DIR": str(tmp_path / "data")}
    log = open(tmp_path / "server.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--config=jupyter_config/jupyter_lab_config.py", "--no-browser",
         "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", f"--IdentityProvider.token={token}",
         "--allow-root"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"

    def request(method, path, body=None):
        req = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body else None,
                                     headers={"Authorization": f"token {token}"})
        opener = urllib.request.build_opener(NoRedirect)
        try:
            with opener.open(req, timeout=30) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    try:
        for _ in range(240):
            try:
                status, headers, _ = request("GET", "/")
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not start: " + (tmp_path / "server.log").read_text()[-2000:])
        assert status == 302 and headers["Location"].split("?")[0].endswith("/lab/tree/notebooks/00_welcome.ipynb")
        status, _, body = request("GET", "/api/contents/solutions/00_welcome.ipynb?content=0")
        assert status == 200 and json.loads(body)["writable"] is False
        before = (ROOT / "solutions/00_welcome.ipynb").read_bytes()
        status, _, body = request("PUT", "/api/contents/solutions/00_welcome.ipynb",
                                  {"type": "file", "format": "text", "content": "overwritten"})
        assert status == 403 and b"read-only" in body
        assert (ROOT / "solutions/00_welcome.ipynb").read_bytes() == before
        status, _, body = request("POST", "/api/kernels", {"name": "python3"})
        assert status == 201, body
        kernel = json.loads(body)["id"]
        for _ in range(120):
            status, _, body = request("GET", f"/api/kernels/{kernel}")
            if json.loads(body)["execution_state"] == "idle":
                break
            time.sleep(0.5)
        request("DELETE", f"/api/kernels/{kernel}")
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()
        shutil.rmtree(runtime, ignore_errors=True)
    text = (tmp_path / "server.log").read_text()
    assert "without encryption" not in text, text[-3000:]
    assert "Traceback" not in text, text[-3000:]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


PROGRESS_CELL = """
import sys
from course_utils.progress import tqdm
for i in tqdm(range(50), desc="training", mininterval=0):
    pass
print("done")
"""


def test_progress_bars_in_nbclient_are_text_on_stdout_and_saved_without_widget_state():
    """What `python -m course_utils execute` saves: the bar as ordinary output, nothing red, no widget state."""
    from course_utils.notebooks import execute

    nb = execute(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(PROGRESS_CELL)]), cwd=ROOT, timeout=120)
    outputs = nb.cells[0].outputs
    assert {o.output_type for o in outputs} == {"stream"} and {o.name for o in outputs} == {"stdout"}, outputs
    text = "".join(o.text for o in outputs)
    assert re.search(r"training: 100%.*50/50", text) and text.rstrip().endswith("done")
    assert "widgets" not in nb.metadata and "application/vnd.jupyter.widget" not in nbformat.writes(nb)


def test_progress_bars_are_widgets_in_a_jupyter_kernel_and_text_in_a_terminal():
    code = "from course_utils.progress import tqdm\nprint(tqdm.__module__)\n"
    env = {k: v for k, v in os.environ.items() if k != "COURSE_PROGRESS"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() in ("tqdm.std", "tqdm.asyncio"), result.stderr
    import ipywidgets  # noqa: F401 - tqdm.auto needs it in Jupyter (requirements.txt)
    from tqdm.notebook import IProgress

    assert IProgress is not None


def test_install_is_quiet_and_the_browser_test_is_optional_for_learners():
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install -qq -r requirements.txt" in makefile  # no setuptools "editable installation" block
    test = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "--ignore=tests/browser" in test and "COURSE_PROGRESS=text" in test
    assert "selenium" not in (ROOT / "requirements.txt").read_text()
    assert "selenium" in (ROOT / "requirements-browser.txt").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    lines = ci.splitlines()
    assert lines.index("make test") < lines.index("make test-browser") and "chromium-driver" in ci
    requirements = (ROOT / "requirements.txt").read_text()
    assert "ipywidgets" in requirements and "threadpoolctl" in requirements
