"""Write the shared cells of scripts/notebook_cells.py (Colab badge, Colab install cell)
into every notebook of notebooks/, in one quick load-change-save per notebook.

    python scripts/stamp_notebooks.py          # stamp the notebooks that need it
    python scripts/stamp_notebooks.py --check  # exit 1 and name them, change nothing
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from notebook_cells import stamp  # noqa: E402

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only report notebooks that would change (exit 1)")
    args = parser.parse_args(argv)
    stale = []
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        if stamp(nb, path.name):
            stale.append(path.name)
            if not args.check:
                nbformat.write(nb, path)
    verb = "need stamping" if args.check else "stamped"
    print(f"{verb}: {', '.join(stale) if stale else 'none'}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
