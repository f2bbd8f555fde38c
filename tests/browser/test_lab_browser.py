"""What a learner sees in JupyterLab, in a real (headless) browser: `make test-browser`.

Starts `make lab`'s JupyterLab (jupyter_config/) on loopback over a temporary copy of student notebook
00 and solution notebook 08, drives the system Chromium with Selenium and asserts what is on screen:
00 opens first, a check's verdict on a wrong and on a correct answer (a failing check shows one
line, no traceback), a figure, a solution cell's progress bar drawn as a widget with nothing on a
red stderr background, and no "Jupyter news" prompt. Screenshots go to $SCREENSHOTS
(default build/browser-screenshots). Optional: skipped where Chromium, chromedriver or Selenium is
missing (Debian/Ubuntu: apt-get install chromium chromium-driver; pip install -r requirements-browser.txt).
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
webdriver = pytest.importorskip("selenium.webdriver", reason="pip install -r requirements-browser.txt")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="needs Debian's chromium and chromium-driver packages")

SHOTS = Path(os.environ.get("SCREENSHOTS") or ROOT / "build" / "browser-screenshots")
STUDENT, SOLUTION = "00_welcome.ipynb", "08_sentiment_classification.ipynb"
TOKEN = "course-browser-test"
WRONG = '''def sigmoid(x):
    return 1 / (1 + np.exp(x))
'''
RIGHT = '''def sigmoid(x):
    return 0.5 * (1 + np.tanh(0.5 * x))
'''


def cell_index(path: Path, predicate) -> int:
    cells = nbformat.read(path, as_version=4).cells
    return next(i for i, c in enumerate(cells) if c.cell_type == "code" and predicate(c.source))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    for folder, name in (("notebooks", STUDENT), ("solutions", SOLUTION)):
        (root / folder).mkdir()
        shutil.copy(ROOT / folder / name, root / folder / name)
    runtime = tempfile.mkdtemp(prefix="jr", dir="/tmp")  # short: Unix socket paths are limited
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in ("COURSE_PROGRESS", "OMP_NUM_THREADS", "MPLBACKEND")}
    env.update(JUPYTER_RUNTIME_DIR=runtime, JUPYTER_DATA_DIR=str(root / ".data"))
    log_path = root / "server.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", f"--config={ROOT / 'jupyter_config' / 'jupyter_lab_config.py'}",
             f"--ServerApp.root_dir={root}", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
             f"--IdentityProvider.token={TOKEN}", "--LabApp.expose_app_in_browser=True", "--allow-root"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(480):
                try:
                    urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=5).close()
                    break
                except OSError:
                    time.sleep(0.5)
            else:
                pytest.fail("JupyterLab did not start: " + log_path.read_text()[-2000:])
            yield {"url": url, "root": root, "log": log_path}
        finally:
            server.terminate()
            server.wait(timeout=60)
            shutil.rmtree(runtime, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000",
                "--disable-gpu", "--no-first-run"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(600)
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def wait(driver, script, timeout=180, what="the page"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            value = driver.execute_script(script)
        except Exception:  # noqa: BLE001 - the app may still be loading
            value = None
        if value:
            return value
        time.sleep(0.5)
    driver.save_screenshot(str(SHOTS / "timeout.png"))
    pytest.fail(f"timed out waiting for {what}")


NOTEBOOK_READY = """
const w = window.jupyterapp && jupyterapp.shell.currentWidget;
if (!w || !w.context || !w.context.path.endsWith(arguments[0])) return null;
const k = w.sessionContext.session && w.sessionContext.session.kernel;
return (w.content.widgets.length > 0 && k && k.status === 'idle') ? w.context.path : null;
"""

RUN = """
const [index, source, done] = [arguments[0], arguments[1], arguments[arguments.length - 1]];
const w = jupyterapp.shell.currentWidget;
const cell = w.content.widgets[index];
if (source !== null) cell.model.sharedModel.setSource(source);
w.content.activeCellIndex = index;
w.content.deselectAll();
jupyterapp.commands.execute('notebook:run-cell').then(() => done(true), e => done(String(e)));
"""

OUTPUT = """
const cell = jupyterapp.shell.currentWidget.content.widgets[arguments[0]];
cell.node.scrollIntoView({block: 'center'});
const outs = [...cell.node.querySelectorAll('.jp-OutputArea-output')];
return {text: outs.map(o => o.innerText).join('\\n'),
        red: outs.filter(o => o.getAttribute('data-mime-type') === 'application/vnd.jupyter.stderr')
                 .map(o => o.innerText),
        images: cell.node.querySelectorAll('.jp-OutputArea-output img').length,
        widgets: cell.node.querySelectorAll('.jupyter-widgets .widget-progress, .jupyter-widgets progress, .jupyter-widgets .progress').length,
        widgetText: [...cell.node.querySelectorAll('.jupyter-widgets')].map(o => o.innerText).join(' ')};
"""


def run_cell(driver, index, source=None):
    result = driver.execute_async_script(RUN, index, source)
    assert result is True, result
    time.sleep(0.5)  # let the output area render
    return driver.execute_script(OUTPUT, index)


def open_notebook(driver, lab, path):
    driver.get(f"{lab['url']}/lab/tree/{path}?token={TOKEN}")
    wait(driver, NOTEBOOK_READY.replace("arguments[0]", repr(path)), what=path)


def test_00_opens_first_and_checks_say_wrong_then_right(lab, browser):
    browser.get(f"{lab['url']}/?token={TOKEN}")
    opened = wait(browser, NOTEBOOK_READY.replace("arguments[0]", repr("notebooks/" + STUDENT)), what="notebook 00")
    assert opened == "notebooks/" + STUDENT
    browser.save_screenshot(str(SHOTS / "01_opened_00.png"))
    path = lab["root"] / "notebooks" / STUDENT
    imports = cell_index(path, lambda s: "from course_utils import check" in s)
    figure = cell_index(path, lambda s: "fig, ax = plt.subplots" in s)
    exercise = cell_index(path, lambda s: "EXERCISE 0.1: sigmoid" in s)
    check_cell = cell_index(path, lambda s: s.strip() == "check.sigmoid(sigmoid)")
    for i in range(imports, figure):
        run_cell(browser, i)
    shown = run_cell(browser, figure)
    assert shown["images"] == 1 and not shown["red"], shown
    browser.save_screenshot(str(SHOTS / "02_figure.png"))

    run_cell(browser, exercise, WRONG)
    wrong = run_cell(browser, check_cell)
    browser.save_screenshot(str(SHOTS / "03_check_wrong.png"))
    assert "✗ sigmoid" in wrong["text"] and "hint" in wrong["text"], wrong
    assert "Traceback" not in wrong["text"] and "---->" not in wrong["text"] and "File " not in wrong["text"], wrong
    assert any(r.strip().startswith("CheckFailed") and len(r.strip().splitlines()) == 1 for r in wrong["red"]), wrong

    run_cell(browser, exercise, RIGHT)
    right = run_cell(browser, check_cell)
    browser.save_screenshot(str(SHOTS / "04_check_right.png"))
    assert "✓ sigmoid: correct" in right["text"] and not right["red"], right
    assert "Jupyter news" not in browser.find_element("tag name", "body").text


def test_solution_cell_shows_a_widget_progress_bar_and_nothing_red(lab, browser):
    path = "solutions/" + SOLUTION
    open_notebook(browser, lab, path)
    nb_path = lab["root"] / path
    bar_cell = cell_index(nb_path, lambda s: "bow_history = fit_classifier(" in s)
    first = cell_index(nb_path, lambda s: True)
    for i in range(first, bar_cell):
        run_cell(browser, i)
    shown = run_cell(browser, bar_cell)
    browser.save_screenshot(str(SHOTS / "05_solution_progress_bar.png"))
    assert shown["widgets"] >= 1 and "100%" in shown["widgetText"], shown
    assert not shown["red"], shown
    read_only = browser.execute_script("return jupyterapp.shell.currentWidget.context.contentsModel.writable")
    assert read_only is False
    assert "without encryption" not in lab["log"].read_text()
