"""`import course_utils` chooses one BLAS and one PyTorch thread, unless the learner chose a count.

Each case runs in a fresh interpreter: thread pools are per process and are set at import time.
"""
import json
import os
import subprocess
import sys


from conftest import ROOT

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "COURSE_THREADS")

REPORT = """
import json, sys
from threadpoolctl import threadpool_info
out = {"blas": sorted({p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}),
       "torch_loaded": "torch" in sys.modules}
if {import_torch}:
    import torch
    out["torch"] = torch.get_num_threads()
print(json.dumps(out))
"""


def run(code: str, import_torch: bool = True, **env) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    clean.update(env)
    result = subprocess.run([sys.executable, "-c", code + REPORT.replace("{import_torch}", str(import_torch))],
                            cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_default_is_one_thread_torch_is_set_on_import_and_the_learners_choice_wins():
    out = run("import numpy\nimport course_utils\nimport os, sys\n"
              "assert os.environ['OMP_NUM_THREADS'] == '1'\n"
              "assert 'torch' not in sys.modules, 'a NumPy-only notebook must not import torch'\n")
    assert out["blas"] == [1] and out["torch"] == 1
    out = run("import numpy\nimport course_utils\nimport torch\ntorch.set_num_threads(2)\n")
    assert out["torch"] == 2, "torch.set_num_threads in the notebook, after the imports, wins"


def test_torch_imported_before_course_utils_gets_one_thread_too():
    out = run("import torch\nimport course_utils.lessons.nb10_seq2seq.seq2seq\n")
    assert out["torch"] == 1 and out["blas"] == [1]


def test_a_count_in_the_environment_is_respected():
    out = run("import numpy\nimport course_utils\nassert course_utils._threads.chosen['source'] == 'OMP_NUM_THREADS'\n",
              OMP_NUM_THREADS="2")
    assert out["blas"] == [2] and out["torch"] == 2


def test_course_threads_sets_the_count_and_0_leaves_the_defaults():
    out = run("import numpy\nimport course_utils\n", import_torch=False, COURSE_THREADS="2")
    assert out["blas"] == [2]
    run("import numpy\nimport course_utils, os\nassert course_utils._threads.chosen['threads'] is None\n"
        "assert 'OMP_NUM_THREADS' not in os.environ\n", import_torch=False, COURSE_THREADS="0")
