"""binedu.course.benchmark: the committed image benchmark, read for notebook 04."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import matplotlib
import pytest

from binedu.course.benchmark import BINARY, FLOAT32, image_summary, plot_image_gap

matplotlib.use("Agg")
COMMITTED = Path(__file__).resolve().parent.parent / "bench" / "results" / "results.json"


def _write(tmp_path: Path, runs: list[dict]) -> Path:
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"images": runs}))
    return path


def test_summary_is_mean_and_sample_sd_per_task_and_model(tmp_path: Path) -> None:
    accs = [0.30, 0.31, 0.33]
    runs = [{"task": "digits-hard", "variant": BINARY, "test_acc": a} for a in accs]
    runs.append({"task": "digits-hard", "variant": FLOAT32, "test_acc": 0.5})
    s = image_summary(_write(tmp_path, runs))
    assert s["digits-hard", BINARY].mean == pytest.approx(statistics.mean(accs))
    assert s["digits-hard", BINARY].sd == pytest.approx(statistics.stdev(accs))
    assert s["digits-hard", FLOAT32].sd == 0.0 and s["digits-hard", FLOAT32].n == 1
    assert str(s["digits-hard", BINARY]).endswith("(3 seeds)")


def test_the_committed_file_gives_the_numbers_bench_results_txt_prints() -> None:
    s = image_summary(COMMITTED)
    text = (COMMITTED.parent / "bench_results.txt").read_text()
    for model in (BINARY, FLOAT32):
        summary = s["digits-hard", model]
        assert f"| digits-hard | {model} |" in text
        assert f"{summary.mean:.3f} ± {summary.sd:.3f}" in text, (model, str(summary))


@pytest.mark.parametrize("content", ["not json", json.dumps({"images": [{"task": "x"}]}), json.dumps({"images": []})])
def test_bad_files_are_named(tmp_path: Path, content: str) -> None:
    path = tmp_path / "results.json"
    path.write_text(content)
    with pytest.raises(ValueError, match="results"):
        image_summary(path)
    with pytest.raises(ValueError, match="no benchmark results"):
        image_summary(tmp_path / "missing.json")


def test_the_gap_figure_has_a_bar_per_task_and_model_and_the_live_run() -> None:
    s = image_summary(COMMITTED)
    fig = plot_image_gap(s, live={"digits-hard": {BINARY: 0.25, FLOAT32: 0.5}})
    ax = fig.axes[0]
    heights = sorted(round(p.get_height(), 6) for p in ax.patches)
    expected = sorted(round(s[t, m].mean, 6) for t in ("digits", "digits-hard") for m in (BINARY, FLOAT32))
    assert heights == expected
    labels = ax.get_legend_handles_labels()[1]
    assert labels.count("this notebook's run (validation, 1 seed)") == 1
    with pytest.raises(ValueError, match="no 'binary' runs"):
        plot_image_gap({}, tasks=("digits",))
