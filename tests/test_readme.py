"""The README's code examples run as written, each in a fresh temporary directory (what
they save, e.g. ``lm.safetensors``, must not land in the repository)."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_the_two_commands():
    text = README.read_text()
    assert "make lab" in text and "make test" in text
    ci = (README.parent / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, flags=re.M), ".ci/run must run the README's test command"


@pytest.fixture
def in_tmp_dir(tmp_path, monkeypatch):
    """Run in an empty temporary directory; fail if the repository gained files."""
    def visible() -> set[str]:
        return {path.name for path in README.parent.iterdir() if not path.name.startswith(".")}

    before = visible()
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    assert not visible() - before, f"a README example wrote into the repository: {sorted(visible() - before)}"


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_blocks_run(index, capsys, in_tmp_dir):
    exec(compile(BLOCKS[index], f"README block {index}", "exec"), {})


def test_ten_line_example_trains_a_binary_layer(capsys, in_tmp_dir):
    block = next(b for b in BLOCKS if "BinaryLinear" in b and "opt.step()" in b)
    assert len([line for line in block.splitlines() if line.strip()]) <= 10
    exec(compile(block, "README example", "exec"), {})
    accuracy = float(re.search(r"tensor\(([0-9.]+)\)\s*$", capsys.readouterr().out).group(1))
    assert accuracy > 0.85  # chance is 0.25
