"""Every registered exercise has its check proven somewhere in tests/test_checks*.py.

(A check that cannot fail is a defect: each test file shows that its checks pass correct
code and reject realistic mistakes. This test only makes sure that no exercise is left out.)
"""
import pytest

from conftest import ROOT
from course_utils.check import EXERCISES

TEXT = "\n".join(p.read_text() for p in sorted((ROOT / "tests").glob("test_checks*.py")))


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_exercise_is_named_in_a_check_test(name):
    assert f'"{name}"' in TEXT or f"'{name}'" in TEXT, f"no tests/test_checks*.py names the exercise {name}"
