"""Every notebook in notebooks/ runs top to bottom, headless, without errors and within
Binder's memory; and every committed notebook is clean and follows the course layout.

Notebooks are picked up by glob, so ones added later are tested automatically. Each run
must stay within the course's budget at ``FAST = True``: 120 s of computation and 1.5 GB
of kernel memory. The time is measured as the CPU time of the kernel and the processes it
started (user + system), not wall-clock time: on a shared machine the wall time depends on
everybody else, while the CPU time is the work the notebook does (every notebook runs
torch on one thread, so on an idle 2-core machine the wall time is about the same).
The wall time is printed too.

Every number that a markdown cell quotes from the run carries a quote marker
(``tests/notebook_quotes.py``), evaluated in the kernel after the run: the text cannot
drift away from what the notebook prints. ``BINEDU_NOTEBOOK_MODE=long`` runs the same test
with ``FAST = False`` (the long version, not held to the budget) so that the markers are
checked in both modes; the default, ``fast``, is what the suite runs.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from notebook_quotes import check_expression, quote_markers, quote_probe

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
IDS = [p.stem for p in NOTEBOOKS]

KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
MAX_RSS_BYTES = 1.5e9  # Binder gives a user 2 GB; the kernel must stay well inside it
MAX_CPU_SECONDS = 120.0  # "about two minutes on a 2-core CPU" at FAST = True (COURSE-STYLE.md)
CELL_TIMEOUT_S = 600  # per cell; long mode allows 3600 (it trains for minutes on a shared machine)
PROBE_TAG = "binedu-test-probe"
MODE = os.environ.get("BINEDU_NOTEBOOK_MODE", "fast")
MAX_OUTPUT_LINES = 150  # long mode prints one line per epoch: 2 models x 30 epochs in notebook 03
MAX_BAR_LINES = 4  # tqdm.auto draws a widget in the kernel; text bars in the output would be spam
TRAINING = re.compile(r"\bfit\(|paper_metrics_table\(")  # a lesson cell that trains shows a progress bar
BAR_LINE = re.compile(r"\d+%\|")  # "42%|████" of a text progress bar

# Appended to each notebook for the run: reports the kernel's interpreter and peak memory.
# The peak is VmHWM, the high-water mark of the kernel's own memory: ru_maxrss would not do
# on Linux, because it keeps the peak of the process before its exec, i.e. of the (large)
# pytest process that forked the kernel.
PROBE = """\
import json, resource, sys
def _peak_kb():
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
def _cpu_seconds():
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
print("BINEDU_PROBE", json.dumps({"executable": sys.executable, "prefix": sys.prefix, "maxrss_kb": _peak_kb(),
                                  "cpu_s": _cpu_seconds()}))
"""


def _markdown_headings(nb: nbformat.NotebookNode) -> list[str]:
    """Level-2 headings of the markdown cells, in order."""
    out = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            out += [m.strip() for m in re.findall(r"^##\s+(.+)$", cell.source, flags=re.M)]
    return out


def test_there_are_notebooks():
    names = {p.name for p in NOTEBOOKS}
    assert {"01_why_one_bit.ipynb", "02_binarization.ipynb", "03_why_normalization.ipynb"} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_is_committed_clean_and_follows_the_layout(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec") == KERNELSPEC, "missing kernelspec: JupyterLab would ask for a kernel"
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"cell {i} has outputs: clear them before committing"
            assert cell.execution_count is None, f"cell {i} has an execution count"
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# "), "the first cell is the title"
    assert re.search(r"learning goals", first.source, re.I), "the first cell states the learning goals"
    headings = [h.lower() for h in _markdown_headings(nb)]
    assert "summary" in headings and "exercises" in headings, headings
    assert headings.index("summary") == len(headings) - 2 and headings[-1] == "exercises", (
        "the notebook ends with a Summary section followed by an Exercises section"
    )
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert re.search(r"^FAST = True\b", code, re.M), "a `FAST = True` switch selects the short version"
    start = next(i for i, c in enumerate(nb.cells) if re.search(r"^##\s+Exercises", c.source, re.M))
    exercises = "\n".join(c.source for c in nb.cells[start:] if c.cell_type == "code")
    assert re.search(r"\bcheck\(", exercises), "the exercises are self-checked with binedu.course.exercises.check"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_quote_markers_are_well_formed(path):
    """Every quote marker is a side-effect free expression (checked before any run), at the
    end of its cell, where it cannot split a paragraph in two."""
    nb = nbformat.read(path, as_version=4)
    for i, c in enumerate(nb.cells):
        body = re.sub(r"(\s*<!--\s*quote:.*?-->)+\s*$", "", c.source, flags=re.S)
        assert "<!-- quote:" not in body, f"cell {i}: a quote marker inside the text; put it at the end of the cell"
    for cell, expr in quote_markers(nb):
        try:
            check_expression(expr)
        except ValueError as err:
            pytest.fail(f"cell {cell}: {err}")


def test_bad_quote_markers_are_refused():
    for bad in ("__import__('os')", "x = 1", "open('f')", "a._secret > 1", "1 <", "d.clear()"):
        with pytest.raises(ValueError):
            check_expression(bad)
    check_expression("0.5 < abs(gap) <= max(a, b) and not done")


def _set_mode(nb: nbformat.NotebookNode) -> None:
    """``FAST = False`` in the notebook's code when the test runs in long mode."""
    if MODE not in ("fast", "long"):
        raise ValueError(f"BINEDU_NOTEBOOK_MODE must be 'fast' or 'long', not {MODE!r}")
    if MODE == "long":
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.source = re.sub(r"^FAST = True\b", "FAST = False", cell.source, flags=re.M)


def _output_lines(cell: nbformat.NotebookNode) -> int:
    return sum(o.get("text", "").count("\n") for o in cell.get("outputs", []) if o.output_type == "stream")


def _bar_lines(cell: nbformat.NotebookNode) -> int:
    """Text progress-bar updates a cell printed (each ``\\r`` redraw counts)."""
    text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.output_type == "stream")
    return len(BAR_LINE.findall(text))


@pytest.fixture
def kernel_env(monkeypatch, tmp_path):
    """A ``python3`` kernelspec that runs this interpreter, found first (JUPYTER_PATH
    comes before user and system kernel dirs), and the inline matplotlib backend that
    JupyterLab uses rather than whatever MPLBACKEND the shell has."""
    spec_dir = tmp_path / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    spec = {**KERNELSPEC, "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]}
    spec.pop("name")
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_runs_without_errors(path, kernel_env):
    nb = nbformat.read(path, as_version=4)
    _set_mode(nb)
    markers = quote_markers(nb)
    nb.cells.append(nbformat.v4.new_code_cell(quote_probe([e for _, e in markers]), metadata={"tags": [PROBE_TAG]}))
    probe = nbformat.v4.new_code_cell(PROBE, metadata={"tags": [PROBE_TAG]})
    nb.cells.append(probe)
    # the probe cell checks that the kernel really ran this interpreter
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=CELL_TIMEOUT_S if MODE == "fast" else 6 * CELL_TIMEOUT_S,
        allow_errors=False,
        resources={"metadata": {"path": str(NOTEBOOKS_DIR)}},
    )
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError on the first failing cell
    wall = time.perf_counter() - start

    problems = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                problems.append(f"cell {i}: {out.ename}: {out.evalue}")
            elif out.output_type == "stream" and out.name == "stderr" and "Traceback" in out.text:
                problems.append(f"cell {i} printed a traceback:\n{out.text}")
    assert not problems, "\n".join(problems)
    spam = [f"cell {i}: {_output_lines(c)} lines, {_bar_lines(c)} progress-bar redraws" for i, c in enumerate(nb.cells)
            if _output_lines(c) > MAX_OUTPUT_LINES or _bar_lines(c) > MAX_BAR_LINES]
    assert not spam, f"cells print too many lines (a progress bar that spams?): {spam}"

    lesson_end = next(i for i, c in enumerate(nb.cells) if re.search(r"^##\s+Exercises", c.source, re.M))
    silent = [i for i, c in enumerate(nb.cells[:lesson_end]) if c.cell_type == "code" and TRAINING.search(c.source)
              and "check(" not in c.source and "progress=False" not in c.source
              and not any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in c.outputs)
              and not _bar_lines(c)]
    assert not silent, f"training cells of the lesson showed no progress bar: cells {silent}"

    quotes_text = "".join(o.get("text", "") for o in nb.cells[-2].outputs if o.output_type == "stream")
    quoted = json.loads(re.search(r"BINEDU_QUOTES (\{.*\})", quotes_text).group(1))
    wrong = [f"cell {cell}: <!-- quote: {expr} --> is {quoted[expr][0]} in {MODE} mode (values: {quoted[expr][1]})"
             for cell, expr in markers if quoted[expr][0] is not True]
    assert not wrong, "the text quotes numbers its run does not show:\n" + "\n".join(wrong)

    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    match = re.search(r"BINEDU_PROBE (\{.*\})", text)
    assert match, f"the probe cell printed nothing useful: {text!r}"
    probe_out = json.loads(match.group(1))
    assert (probe_out["executable"], probe_out["prefix"]) == (sys.executable, sys.prefix), (
        f"the kernel ran {probe_out['executable']}, not this interpreter {sys.executable}"
    )
    peak = probe_out["maxrss_kb"] * 1024  # Linux reports kilobytes
    cpu = probe_out["cpu_s"]
    print(f"\n{path.name}: {cpu:.1f} s CPU, {wall:.1f} s wall, kernel peak RSS {peak / 1e6:.0f} MB")
    if MODE == "long":
        return  # the long version is not held to the FAST budget
    assert peak < MAX_RSS_BYTES, f"{path.name}: kernel peak RSS {peak / 1e6:.0f} MB exceeds {MAX_RSS_BYTES / 1e6:.0f} MB"
    assert cpu <= MAX_CPU_SECONDS, (
        f"{path.name}: the kernel and its subprocesses used {cpu:.0f} s of CPU at FAST = True, more than the "
        f"course's {MAX_CPU_SECONDS:.0f} s budget"
    )
