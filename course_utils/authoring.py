"""``python -m course_utils doctor``: what an author still has to do, in one list.

It reads the course as the learner, the grader and the tests see it, and reports each gap with
where to fix it (docs/authoring.md explains every step):

- a solution notebook without its lesson package, or a lesson without its notebook;
- an exercise marker in a solution without a registered check, or a registered exercise that
  no solution marks (or marks in another notebook);
- an exercise whose functions have no reference under their names;
- an exercise without the cell that calls its check right under its hints;
- a lesson whose exercises are not proven: no ``tests/lessons/test_<lesson>.py`` using
  ``Proofs("<lesson>")``, an exercise there without a correct solution written differently,
  or a catalogue of fewer than two mistakes;
- a lesson missing from the editors' imports of ``course_utils.check`` and ``course_utils.reference``;
- ``notebooks/`` out of date with ``solutions/``.

It imports the checks and the references (torch among them) but runs no notebook and no test.
"""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from .release import ROOT, find_exercises

CHECK_CALL = re.compile(r"\bcheck\.(\w+)\(")


def solution_markers(root: Path) -> dict[str, list[tuple[str, int, str]]]:
    """Notebook stem -> [(exercise name, index of its cell, source of the cells after it)]."""
    found = {}
    for path in sorted((root / "solutions").glob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        sources = ["".join(c["source"]) if c["cell_type"] == "code" else "" for c in cells]
        found[path.stem] = [(m.name, i, "\n".join(sources[i + 1:i + 8]))
                            for i, source in enumerate(sources) for m in find_exercises(source)]
    return found


def notebook_problems(root: Path, lessons: list[str]) -> list[str]:
    """Solution notebooks and lesson packages that do not come in pairs."""
    stems = {p.stem for p in (root / "solutions").glob("*.ipynb")}
    problems = [f"solutions/{s}.ipynb has no lesson package: create course_utils/lessons/nb{s}/ "
                "(an __init__.py with the notebook's title; reference.py and checks.py when it has exercises)"
                for s in sorted(stems - {lesson[2:] for lesson in lessons})]
    problems += [f"course_utils/lessons/{lesson}/ has no notebook solutions/{lesson[2:]}.ipynb"
                 for lesson in lessons if lesson[2:] not in stems]
    return problems


def exercise_problems(markers: dict, exercises: dict, lesson_of: dict) -> list[str]:
    """Markers without checks, checks without markers, exercises without references or check cells."""
    from . import reference

    problems, marked = [], {}
    for stem, found in markers.items():
        for name, _, after in found:
            marked[name] = stem
            if name not in exercises:
                problems.append(f"solutions/{stem}.ipynb marks exercise {name}, which has no check: define "
                                f"`{name} = ...Exercise(\"{name}\", ...)` in course_utils/lessons/nb{stem}/checks.py")
            elif f"check.{name}(" not in after:
                problems.append(f"solutions/{stem}.ipynb: exercise {name} has no `check.{name}(...)` cell after "
                                "its hints")
    for name, lesson in lesson_of.items():
        if name not in marked:
            problems.append(f"exercise {name} (course_utils/lessons/{lesson}/checks.py) is marked in no solution: "
                            f"add `# EXERCISE N.k: {name} (P points)` to solutions/{lesson[2:]}.ipynb")
        elif marked[name] != lesson[2:]:
            problems.append(f"exercise {name} is defined in lessons/{lesson} but marked in solutions/{marked[name]}.ipynb")
        for func in exercises[name].funcs:
            if func not in reference.__all__:
                problems.append(f"exercise {name}: course_utils.reference has no {func}; define it in "
                                f"course_utils/lessons/{lesson}/reference.py")
    return problems


def proven_in(test_file: Path, lesson: str) -> set[str] | None:
    """The exercises a lesson's test file registers correct solutions for, read from its source;
    None when the file does not use ``Proofs("<lesson>")``."""
    if not test_file.exists():
        return None
    tree = ast.parse(test_file.read_text(encoding="utf-8"))
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and n.args
             and isinstance(n.args[0], ast.Constant) and isinstance(n.args[0].value, str)]
    name_of = lambda f: f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")  # noqa: E731
    if not any(name_of(c.func) == "Proofs" and c.args[0].value == lesson for c in calls):
        return None
    return {c.args[0].value for c in calls if name_of(c.func) == "correct"}


def proof_problems(root: Path, exercises: dict, lesson_of: dict) -> list[str]:
    """Lessons and exercises the tests do not prove (see tests/proofs.py)."""
    problems = []
    for lesson in sorted(set(lesson_of.values())):
        test_file = root / "tests" / "lessons" / f"test_{lesson}.py"
        proven = proven_in(test_file, lesson)
        names = [n for n, where in lesson_of.items() if where == lesson]
        if proven is None:
            problems.append(f"{lesson}: no proofs; create {test_file.relative_to(root)} with "
                            f"`proofs = Proofs(\"{lesson}\")`, correct solutions, and `globals().update(proofs.tests())`")
            continue
        problems += [f"{name}: no correct solution written differently from the reference in "
                     f"{test_file.relative_to(root)} (`proofs.correct(\"{name}\", ...)`)"
                     for name in names if name not in proven]
        problems += [f"{name}: its catalogue has {len(exercises[name].mistakes)} mistake(s); give two or more "
                     f"(Mistake(hint, implementation=...) in course_utils/lessons/{lesson}/checks.py)"
                     for name in names if len(exercises[name].mistakes) < 2]
    return problems


def editor_import_problems(root: Path, lessons: list[str]) -> list[str]:
    """Lessons that ``course_utils.check`` or ``course_utils.reference`` do not import for editors."""
    problems = []
    for package, module in (("check", "checks"), ("reference", "reference")):
        text = (root / "course_utils" / package / "__init__.py").read_text(encoding="utf-8")
        for lesson in lessons:
            has = (root / "course_utils" / "lessons" / lesson / f"{module}.py").exists()
            line = f"from course_utils.lessons.{lesson}.{module} import *"
            if has and line not in text:
                problems.append(f"course_utils/{package}/__init__.py: add `{line}` under TYPE_CHECKING "
                                "(go-to-definition in editors)")
    return problems


def doctor(root: Path = ROOT) -> list[str]:
    """Every gap between the solutions, the lessons, the references, the checks and their proofs."""
    from .check import EXERCISES, LESSON_OF
    from .checking.registry import lesson_names
    from .release import release

    lessons = lesson_names()
    problems = notebook_problems(root, lessons)
    problems += exercise_problems(solution_markers(root), EXERCISES, LESSON_OF)
    problems += proof_problems(root, EXERCISES, LESSON_OF)
    problems += editor_import_problems(root, lessons)
    problems += [f"{p} (run `python -m course_utils release`)" for p in release(root, check=True)]
    return problems


def doctor_command() -> int:
    """Print the gaps, one per line; exit status 1 when there is any."""
    problems = doctor()
    for p in problems:
        print(f"- {p}")
    print(f"{len(problems)} thing(s) to do" if problems else "nothing missing: every exercise is marked, "
          "checked, referenced and proven, and notebooks/ is up to date")
    return 1 if problems else 0
