"""``python -m teacher release OUT/`` writes the student notebooks; ``python -m teacher grade
SUBMISSIONS/ OUT/ [--release DIR] [--seed-file FILE]`` grades a class (see README.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m teacher")
    sub = parser.add_subparsers(dest="command", required=True)
    rel = sub.add_parser("release", help="write the student notebooks (no answers, no hidden tests)")
    rel.add_argument("out", type=Path)
    rel.add_argument("--source", type=Path, default=ROOT / "notebooks")
    gr = sub.add_parser("grade", help="grade SUBMISSIONS/<student>/<notebook>.ipynb in fresh kernels")
    gr.add_argument("submissions", type=Path)
    gr.add_argument("out", type=Path)
    gr.add_argument("--release", type=Path, default=ROOT / "notebooks")
    gr.add_argument("--seed-file", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.command == "release":
        from .release import release

        if not args.source.is_dir():
            parser.error(f"no notebook folder at {args.source}")
        for path in release(args.source, args.out):
            print(path)
        return 0
    from .grade import grade_class
    from .hidden import secret_seed

    if not args.submissions.is_dir():
        parser.error(f"no submissions folder at {args.submissions}")
    rows = grade_class(args.release, args.submissions, args.out, secret_seed(args.seed_file))
    print(f"graded {len({r.student for r in rows})} students: {args.out / 'scores.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
