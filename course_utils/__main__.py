"""Command line: ``python -m course_utils release [--check]`` and ``execute``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("release", help="regenerate notebooks/ from solutions/")
    p.add_argument("--check", action="store_true", help="only report; exit 1 if notebooks/ is out of date")

    p = sub.add_parser("execute", help="run solution notebooks top to bottom and save their outputs")
    p.add_argument("paths", nargs="*", type=Path, help="notebooks (default: every solutions/*.ipynb)")
    p.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell")

    args = parser.parse_args(argv)
    if args.command == "release":
        from .release import ReleaseError, release

        try:
            problems = release(check=args.check)
        except ReleaseError as e:
            print(f"release failed: {e}", file=sys.stderr)
            return 2
        if args.check:
            for line in problems:
                print(line)
            if problems:
                print("run `python -m course_utils release` to regenerate notebooks/")
                return 1
            print("notebooks/ is up to date")
        else:
            print("\n".join(problems) if problems else "notebooks/ was already up to date")
        return 0
    if args.command == "execute":
        from .notebooks import execute_in_place

        return execute_in_place(args.paths, timeout=args.timeout)
    return 2


if __name__ == "__main__":
    sys.exit(main())
