"""The README's code examples run as written, each in a fresh temporary directory (what
they save, e.g. ``lm.safetensors``, must not land in the repository): every Python block,
and every ``python -m binedu`` command of its shell blocks, in order. The README stays
short (the details live in the documentation site) and names no internal tracker."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
SHELL_BLOCKS = re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S)
CLI_COMMANDS = [
    shlex.split(line.split("#")[0])
    for block in SHELL_BLOCKS
    for line in block.splitlines()
    if line.startswith("python -m binedu ")
]
MAX_LINES = 150


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


def test_readme_is_short_and_links_the_documentation():
    text = README.read_text()
    assert len(text.splitlines()) <= MAX_LINES, f"README has {len(text.splitlines())} lines (at most {MAX_LINES})"
    assert not re.search(r"\bissue \d+", text, flags=re.I), "no references to the project's internal issues"
    assert "pip install torch --index-url https://download.pytorch.org/whl/cpu" in text
    assert text.index("download.pytorch.org/whl/cpu") < text.index('pip install "binedu @'), "CPU torch first"
    for link in re.findall(r"\]\(((?!https?:)[^)#]+)", text):
        assert (README.parent / link).exists(), f"README links to {link}, which does not exist"
    assert any(block for block in BLOCKS if "generate(" in block), "README needs a generate example"


def test_readme_command_line_examples_run(in_tmp_dir):
    assert CLI_COMMANDS, "README has no command-line example"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(README.parent), os.environ.get("PYTHONPATH", "")])}
    for command in CLI_COMMANDS:
        result = subprocess.run(
            [sys.executable, *command[1:]], cwd=in_tmp_dir, env=env, capture_output=True, text=True, timeout=900
        )
        assert result.returncode == 0, f"`{shlex.join(command)}` failed: {result.stderr[-2000:]}"
    assert (in_tmp_dir / "runs" / "digits" / "packed.safetensors").exists()
