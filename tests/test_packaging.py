"""The files a well-kept package has, and the install paths: pyproject.toml's metadata and
dependency split, LICENSE, CITATION.cff, CHANGELOG, CONTRIBUTING, py.typed; the Makefile's
two installs and the Python version check of scripts/install.sh."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import binedu

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest depends on tomli before Python 3.11
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]
LAB_ONLY = {"jupyterlab", "notebook", "jupyter-server"}
TEST_ONLY = {"pytest", "hypothesis", "playwright", "ruff", "nbclient", "pytest-timeout"}
HEAVY = {"scikit-learn", "scipy"}


def names(lines: list[str]) -> set[str]:
    return {canonicalize_name(Requirement(line).name) for line in lines}


def test_runtime_dependencies_leave_out_the_lab_the_test_tools_and_scikit_learn():
    runtime = names(PROJECT["dependencies"])
    assert {"torch", "numpy", "ipywidgets", "matplotlib", "safetensors"} <= runtime
    assert not runtime & (LAB_ONLY | TEST_ONLY | HEAVY), sorted(runtime & (LAB_ONLY | TEST_ONLY | HEAVY))
    torch = next(Requirement(line) for line in PROJECT["dependencies"] if line.startswith("torch"))
    assert torch.specifier.contains("2.2.0") and not torch.specifier.contains("2.1.0"), "a normal torch>=2.2"


def test_lab_extra_is_the_front_end_and_test_extra_adds_the_tools():
    extras = PROJECT["optional-dependencies"]
    lab, test = names(extras["lab"]), names(extras["test"])
    assert "jupyterlab" in lab and not lab & TEST_ONLY
    assert TEST_ONLY <= test
    assert "binedu[lab,docs]" in extras["test"], "the test extra includes the lab (notebook and browser tests) and the docs"
    assert {"sphinx", "myst-nb", "jupyter-cache"} <= names(extras["docs"]), "make docs builds with Sphinx + MyST-NB"
    assert "numba" in names(extras["fast"]) and "numba" in lab, "the lab includes the compiled kernel (fast extra)"


def test_license_is_an_spdx_expression_with_its_text_shipped():
    assert PROJECT["license"] == "MIT"
    assert PROJECT["license-files"] == ["LICENSE"]
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License") and "binedu developers" in text and "2026" in text
    assert not any("License ::" in c for c in PROJECT.get("classifiers", [])), "no license classifier with SPDX"


def test_version_is_written_once():
    assert "version" not in PROJECT and "version" in PROJECT["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "binedu.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", binedu.__version__)
    init = (REPO / "binedu" / "__init__.py").read_text(encoding="utf-8")
    assert init.count(binedu.__version__) == 1


def test_urls_and_typed_marker():
    urls = PROJECT["urls"]
    assert urls["Source"].startswith("https://github.com/") and "2509.07025" in urls["Paper"]
    assert (REPO / "binedu" / "py.typed").is_file()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["binedu"]


def test_shipped_data_files_are_package_data():
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]["binedu.data"]
    folder = REPO / "binedu" / "data"
    for required in ("files/digits.csv.gz", "files/README"):
        assert any((folder / required) in folder.glob(pattern) for pattern in patterns), required


def test_citation_cites_the_paper_and_binedu():
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text(encoding="utf-8"))
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "software" and "binedu" in cff["title"]
    assert str(cff["version"]) == binedu.__version__
    paper = cff["preferred-citation"]
    assert paper["title"] == "1 bit is all we need: binary normalized neural networks"
    assert [a["family-names"] for a in paper["authors"]] == ["Cabral", "Pirozelli", "Driemeier"]
    assert paper["year"] == 2025 and "2509.07025" in paper["url"]
    assert any("2509.07025" in ref.get("url", "") for ref in cff["references"])


def test_changelog_has_this_version_and_contributing_the_essentials():
    changelog = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## [{binedu.__version__}]" in changelog and "## [0.1.0]" in changelog
    contributing = (REPO / "CONTRIBUTING.md").read_text(encoding="utf-8")
    for needed in ("make test", "without outputs", "binedu/course/exercises/", "scripts/stamp_notebooks.py"):
        assert needed in contributing, needed


def test_constraints_pin_torch_and_the_type_checker_for_the_makefile_only():
    pins = [line for line in (REPO / "constraints.txt").read_text().splitlines() if line and line[0] != "#"]
    assert pins == ["torch==2.13.0", "mypy==2.4.1"]
    mypy = next(Requirement(line) for line in PROJECT["optional-dependencies"]["test"] if line.startswith("mypy"))
    assert mypy.specifier.contains("2.4.1"), "the test extra allows the pinned mypy"


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
@pytest.mark.parametrize(("target", "extras"), [("lab", "lab"), ("install-lab", "lab"), ("install", "lab,test")])
def test_make_installs_the_right_extras(target, extras, tmp_path):
    """`make -n` prints the commands without running them."""
    out = subprocess.run(
        ["make", "-n", "-B", target, f"VENV={tmp_path / 'venv'}"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    assert re.search(rf"bash scripts/install\.sh {re.escape(extras)}$", out, re.M), out


def test_install_script_refuses_an_old_python_before_creating_anything(tmp_path):
    fake = tmp_path / "python3.9"
    fake.write_text('#!/bin/sh\ncase "$2" in *version_info*) exit 1;; *) echo 3.9.6;; esac\n')
    fake.chmod(0o755)
    venv = tmp_path / "venv"
    env = {**os.environ, "PYTHON": str(fake), "VENV": str(venv)}
    result = subprocess.run(
        ["bash", "scripts/install.sh", "lab"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "Python 3.9.6" in result.stderr and "3.10 or newer" in result.stderr and "PYTHON=" in result.stderr
    assert not venv.exists()


def test_install_script_names_a_missing_python(tmp_path):
    env = {**os.environ, "PYTHON": "python-that-does-not-exist", "VENV": str(tmp_path / "venv")}
    result = subprocess.run(
        ["bash", "scripts/install.sh", "lab"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1 and "python-that-does-not-exist was not found" in result.stderr


# ---------------------------------------------------------------- the install scripts, run on fakes

FAKE_PYTHON = """#!/bin/sh
# stands in for python3 and the venv's python: records pip calls, creates no real venv
if [ "$1" = "-c" ]; then echo 3.11.0; exit 0; fi
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then mkdir -p "$3/bin" && cp "$0" "$3/bin/python"; exit 0; fi
if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then
    shift 2
    echo "FAKE pip $*" >&2
    case "$*" in *--index-url*) [ -n "$FAKE_INDEX_FAILS" ] && exit 1 ;; esac
    exit 0
fi
if [ "$1" = "-" ]; then
    cat >/dev/null
    if [ -n "$2" ]; then [ -n "$FAKE_PROBE_OK" ] && exit 0; exit 1; fi  # the CPU index probe
    echo "install: torch (fake)"; exit 0
fi
exit 2
"""


def run_install_script(tmp_path, **env_vars):
    fake = tmp_path / "python3"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("TORCH_INDEX", "VENV", "PYTHON")}
    env |= {"PYTHON": str(fake), "VENV": str(tmp_path / "venv"), **env_vars}
    result = subprocess.run(
        ["bash", "scripts/install.sh", "lab"], cwd=REPO, env=env, capture_output=True, text=True,
        stdin=subprocess.DEVNULL, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stderr


@pytest.mark.skipif(sys.platform != "linux", reason="the CUDA build is what the usual index gives on Linux")
@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        ({}, "cannot be reached"),  # the probe of PyTorch's CPU index fails
        ({"FAKE_PROBE_OK": "1", "FAKE_INDEX_FAILS": "1"}, "installing torch from https://download.pytorch.org/whl/cpu failed"),
        ({"TORCH_INDEX": "default"}, "TORCH_INDEX=default"),
    ],
    ids=["unreachable", "index-fails", "default"],
)
def test_install_script_warns_before_the_cuda_build(tmp_path, settings, reason):
    err = run_install_script(tmp_path, **settings)
    warning = err.index("WARNING")
    assert reason in err[warning:] and "3 GB" in err[warning:] and "--index-url https://download.pytorch.org/whl/cpu" in err
    binedu_install = err.index("FAKE pip install -c constraints.txt -e .[lab]")
    assert warning < binedu_install, "the warning comes before pip fetches torch from the usual index"


def test_install_script_takes_the_cpu_build_without_a_warning(tmp_path):
    err = run_install_script(tmp_path, FAKE_PROBE_OK="1")
    assert "FAKE pip install -c constraints.txt --index-url https://download.pytorch.org/whl/cpu torch" in err
    assert "WARNING" not in err


FAKE_APT_GET = """#!/bin/sh
echo "apt-get $*" >> "$FAKE_LOG"
case "$*" in *install*chromium*) printf '#!/bin/sh\\n' > "$BINEDU_CHROMIUM" && chmod +x "$BINEDU_CHROMIUM" ;; esac
"""


def run_browser_script(tmp_path, answer: str | None = None, **env_vars):
    """scripts/install-browser.sh as root with a fake apt-get; ``answer``: typed on a terminal."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, text in (("apt-get", FAKE_APT_GET), ("id", "#!/bin/sh\necho 0\n")):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    log, chromium = tmp_path / "apt.log", tmp_path / "chromium"
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "BINEDU_INSTALL_BROWSER")}
    env |= {"PATH": f"{bin_dir}:{env['PATH']}", "FAKE_LOG": str(log), "BINEDU_CHROMIUM": str(chromium), **env_vars}
    if answer is None:
        result = subprocess.run(
            ["bash", "scripts/install-browser.sh"], cwd=REPO, env=env, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    else:
        import pty

        leader, follower = pty.openpty()
        os.write(leader, answer.encode() + b"\n")
        try:
            result = subprocess.run(
                ["bash", "scripts/install-browser.sh"], cwd=REPO, env=env, stdin=follower,
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
        finally:
            os.close(leader)
            os.close(follower)
    installed = log.exists() and "install" in log.read_text() and chromium.exists()
    return result.returncode, result.stderr, installed


@pytest.mark.skipif(sys.platform == "win32", reason="bash script")
@pytest.mark.parametrize(
    ("settings", "answer", "expected_rc", "expected_install"),
    [
        ({}, None, 0, False),  # nobody to ask: no consent, nothing installed, the browser tests skip
        ({"BINEDU_INSTALL_BROWSER": "1"}, None, 0, True),
        ({"BINEDU_INSTALL_BROWSER": "0"}, None, 0, False),
        ({"CI": "true"}, None, 0, True),  # CI needs the browser tests and has no stdin
        ({"CI": "true", "BINEDU_INSTALL_BROWSER": "0"}, None, 1, False),  # CI without a browser fails
        ({}, "y", 0, True),  # asked on a terminal
        ({}, "", 0, False),  # the default answer is no
    ],
    ids=["no-tty", "env-yes", "env-no", "ci", "ci-but-no", "asked-yes", "asked-default"],
)
def test_browser_is_installed_only_with_consent(tmp_path, settings, answer, expected_rc, expected_install):
    rc, err, installed = run_browser_script(tmp_path, answer, **settings)
    assert (rc, installed) == (expected_rc, expected_install), err
    if not expected_install:
        assert "BINEDU_INSTALL_BROWSER=1" in err, "say how to agree"
    if answer is not None:
        assert "system-wide" in err and "[y/N]" in err, "the question says what and where"


def test_browser_script_installs_nothing_when_a_browser_exists(tmp_path):
    chromium = tmp_path / "chromium"
    chromium.write_text("#!/bin/sh\n")
    chromium.chmod(0o755)
    rc, err, installed = run_browser_script(tmp_path, CI="true")
    assert rc == 0 and not (tmp_path / "apt.log").exists(), err


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_test_says_what_it_installs_first_then_lints_and_type_checks(tmp_path):
    venv = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}  # inside `make test`
    out = subprocess.run(
        ["make", "--no-print-directory", "-n", "-B", "test", f"VENV={venv}"],
        cwd=REPO, capture_output=True, text=True, check=True, env=env,
    ).stdout.splitlines()
    assert out[0].startswith('echo "make test installs:'), out[0]
    about = " ".join(line for line in out if line.startswith("echo"))
    for needed in (f"{venv}/", "chromium", "system-wide", "apt-get", "root", "BINEDU_INSTALL_BROWSER=1", "CI=true"):
        assert needed in about, needed
    commands = [line for line in out if not line.startswith("echo")]
    order = [next(i for i, line in enumerate(commands) if word in line)
             for word in ("scripts/install.sh", "mypy -p binedu", "ruff check", "install-browser.sh", "docs/build.py",
                          "-m pytest")]  # fmt: skip
    assert order == sorted(order), commands


def test_ci_runs_make_test_non_interactively():
    lines = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert lines[-1] == "make test", "CI runs exactly the README's test command, last"
    assert 'export CI="${CI:-true}"' in lines and "exec </dev/null" in lines


# ---------------------------------------------------------------- types

def test_mypy_strictness_is_stated_and_not_silenced_wholesale():
    mypy = PYPROJECT["tool"]["mypy"]
    for flag in ("check_untyped_defs", "warn_unused_ignores", "warn_redundant_casts"):
        assert mypy.get(flag) is True, flag
    assert "ignore_missing_imports" not in mypy and "ignore_errors" not in mypy, "no global silencing"
    for override in mypy.get("overrides", []):
        assert set(override) <= {"module", "ignore_missing_imports"}, override
        assert set(override["module"]) <= {"ipywidgets", "ipywidgets.*", "tqdm", "tqdm.*", "numba", "numba.*"}


def test_every_type_ignore_names_its_code_and_says_why():
    bare = []
    for path in sorted((REPO / "binedu").rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if "type: ignore" in line and not re.search(r"# type: ignore\[[a-z-]+(, *[a-z-]+)*\] +# \S", line):
                bare.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not bare, "a `# type: ignore[code]  # reason` each:\n" + "\n".join(bare)


def test_the_sdist_carries_the_notebooks_for_the_wheel():
    manifest = (REPO / "MANIFEST.in").read_text(encoding="utf-8").splitlines()
    assert "include notebooks/*.ipynb" in manifest, "setup.py copies them into the wheel from the sdist"
