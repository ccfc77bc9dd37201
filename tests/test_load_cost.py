"""Loading costs what the file is worth (issue 22, item 2): crafted files that cost 50-63x
their size on the second edition, each loaded through the command line in a fresh
process whose peak resident memory (``VmHWM`` in ``/proc/self/status``) is compared
with its resident memory just before the command ran.

The attacks are the issue's, scaled down to at most 10 MiB so that the second
edition's cost stays harmless on a shared machine (the goal: under 200 MiB for any file
below 10 MiB; the cases below must cost far less, and be refused with one line).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from file_probes import write_raw

from binedu.checkpoint import FORMAT, MAX_MODULES, VERSION

ROOT = Path(__file__).resolve().parents[1]
MIB = 2**20
BUDGET = 100 * MIB  # peak memory a crafted file below 10 MiB may add (the goal: 200 MiB)

PROBE = """
import io, json, sys, contextlib
import binedu.__main__, binedu.checkpoint, binedu.train_checkpoint, binedu.data, PIL.Image, safetensors.torch

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024

before = status("VmRSS")
err = io.StringIO()
with contextlib.redirect_stderr(err):
    code = binedu.__main__.main(sys.argv[1:])
print(json.dumps({"added": status("VmHWM") - before, "code": code, "stderr": err.getvalue()}))
"""


def cost(*argv: str) -> dict:
    """Peak memory added by ``binedu argv`` in a fresh process, its exit status and stderr."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=300,
        env=os.environ | {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def packed_file(path: Path, structure: dict) -> Path:
    """A packed checkpoint without tensors whose (correctly checksummed) structure is ``structure``."""
    text = json.dumps(structure, separators=(",", ":"))
    meta = {
        "format": FORMAT, "version": VERSION, "structure": text,
        "structure_sha256": hashlib.sha256(text.encode()).hexdigest(), "tensors_sha256": "[]",
    }  # fmt: skip
    return write_raw(path, {"__metadata__": meta})


def relus(count: int) -> dict:
    return {"type": "Sequential", "args": {}, "children": {str(i): {"type": "ReLU", "args": {}} for i in range(count)}}


def refused(result: dict, *words: str) -> None:
    lines = result["stderr"].strip().splitlines()
    assert result["code"] == 1 and len(lines) == 1 and "Traceback" not in result["stderr"], result
    assert all(w in lines[0] for w in words), lines[0]


def test_a_header_of_empty_lists_is_refused_before_it_is_parsed(tmp_path):
    """The issue's 99 MiB header of empty JSON lists (4.8 GB, 60 s), at 9 MiB."""
    path = tmp_path / "lists.safetensors"
    raw = b"[" + b"[]," * (3 * MIB) + b"[]]"
    path.write_bytes(len(raw).to_bytes(8, "little") + raw)
    result = cost("evaluate", str(path), "--device", "cpu")
    refused(result, str(path))
    assert result["added"] < BUDGET, result


@pytest.mark.parametrize("count", [200_000, MAX_MODULES + 1])
def test_a_structure_of_many_parameter_free_modules_is_refused(tmp_path, count):
    """The issue's 73 MiB file of 1.6 M ReLUs (it loaded, using 4.6 GB), at 9 MiB, and
    one just over the module cap whose header is under the header limit."""
    path = packed_file(tmp_path / "relus.safetensors", relus(count))
    assert path.stat().st_size < 10 * MIB
    result = cost("evaluate", str(path), "--device", "cpu", "--data", "digits")
    refused(result, str(path))
    assert result["added"] < BUDGET, result


def test_a_pool_that_outputs_ten_million_values_is_refused_at_load(tmp_path):
    """The issue's 770-byte file holding AdaptiveAvgPool1d(10**7) (42 s and 5.2 GB at evaluate)."""
    pool = {
        "type": "Sequential",
        "args": {},
        "children": {"0": {"type": "AdaptiveAvgPool1d", "args": {"output_size": 10**7}}},
    }
    path = packed_file(tmp_path / "pool.safetensors", pool)
    assert path.stat().st_size < 1000
    result = cost("evaluate", str(path), "--device", "cpu", "--data", "digits")
    refused(result, str(path), "output_size")
    assert result["added"] < BUDGET, result
