"""The compiled (numba) lookup-table kernel equals the plain-PyTorch reference and ``x @ W``;
without numba everything falls back to the reference, with a one-time warning."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import binedu.lut_kernel as lut_kernel
import binedu.packed as packed_module
from binedu import BinaryLinear, pack_bits
from binedu.packed import PackedLinear, lut_matmul, packed_matmul
from binedu.packed import threads as torch_threads

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(
    not lut_kernel.available(), reason=f"numba {lut_kernel.why_unavailable()}: the compiled kernel cannot run here"
)


@st.composite
def kernel_cases(draw):
    """A random 0/1 kernel and input rows: any ``n_x`` (mostly not a multiple of 8), 1 to 64
    rows, unit counts across a block boundary, inputs zero, normal or huge, and sometimes a
    non-contiguous view."""
    n_x = draw(st.integers(1, 70))
    n_units = draw(st.sampled_from([1, 3, 17, 511, 513, 1100, 2100]))  # 1 to 3 blocks per thread
    rows = draw(st.integers(1, 64))
    scale = draw(st.sampled_from([0.0, 1.0, 1e6]))
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    w = torch.randint(0, 2, (n_x, n_units), generator=g)
    x = torch.randn(rows, 2 * n_x, generator=g) * scale
    x = x[:, ::2] if draw(st.booleans()) else x[:, :n_x].contiguous()  # strided, or contiguous
    return x, w


def tolerance(x: torch.Tensor) -> dict[str, float]:
    """float32 rounding of sums of up to ``n_x`` terms of the size of ``x``."""
    size = float(x.abs().max()) if x.numel() else 0.0
    return {"rtol": 1e-4, "atol": 1e-5 * max(size, 1.0) * max(x.shape[-1], 1) ** 0.5}


@settings(max_examples=60, deadline=None)
@given(kernel_cases(), st.sampled_from([1, 2]))
def test_compiled_kernel_equals_reference_and_float_product(case, threads):
    x, w = case
    bits = pack_bits(w, dim=0)
    expected = (x.double() @ w.double()).float()
    with torch_threads(threads):
        got = packed_matmul(x, bits, "numba")
    reference = lut_matmul(x, bits)
    tol = tolerance(x)
    torch.testing.assert_close(got, reference, **tol)
    torch.testing.assert_close(got, expected, **tol)
    if not x.any():
        assert not got.any(), "a zero input gives exactly zero"


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 40),
    st.sampled_from([1, 5, 600]),
    st.integers(1, 64),
    st.sampled_from(["linear", "relu", "gelu"]),
    st.booleans(),
    st.integers(0, 2**31 - 1),
)
def test_fused_epilogue_equals_the_binary_layer(n_x, n_units, rows, activation, normalize, seed):
    """Bias, Normalize and the activation fused after the lookups (Alg. 2) give the binary
    layer's output, and the plain-PyTorch path's."""
    torch.manual_seed(seed)
    binary = BinaryLinear(n_x, n_units, activation, normalize=normalize).eval()
    for p in binary.parameters():
        torch.nn.init.normal_(p)
    packed = PackedLinear.from_binary(binary)
    packed.method = "numba"  # every row count, not only auto's few
    x = torch.randn(rows, n_x)
    with torch.no_grad():
        expected = binary(x)
        got = packed(x)
        packed.method = "lut" if rows <= 4 else "dense"
        reference = packed(x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(got, reference, rtol=1e-4, atol=1e-4)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 70), st.integers(1, 40), st.integers(1, 20), st.integers(8, 400), st.sampled_from([1, 2]))
def test_dense_path_unpacks_with_the_kernel_and_equals_the_float_product(n_x, n_units, rows, chunk, threads):
    """The dense path (many rows) unpacks blocks of units with the compiled kernel; any
    ``n_x``, and block sizes that leave a partial last block."""
    g = torch.Generator().manual_seed(n_x * 1000 + n_units)
    w = torch.randint(0, 2, (n_x, n_units), generator=g)
    x = torch.randn(rows, n_x, generator=g)
    bits = pack_bits(w, dim=0)
    block = torch.empty(n_x, min(n_units, 3))
    assert lut_kernel.unpack(bits, 0, block.shape[1], block)
    torch.testing.assert_close(block, w[:, : block.shape[1]].float())
    with torch_threads(threads):
        got = packed_module.dense_matmul(x, bits, chunk_elements=chunk)
    torch.testing.assert_close(got, x @ w.float(), **tolerance(x))


@given(st.integers(1, 100_000), st.integers(1, 64))
def test_unit_blocks_are_whole_cache_lines_and_give_every_thread_work(units, threads):
    block = lut_kernel.unit_block(units, threads)
    assert block % 64 == 0 and 64 <= block <= lut_kernel.UNIT_BLOCK
    blocks = -(-units // block)
    assert blocks >= min(threads, units // 64), "a block per thread while 64-unit blocks allow it"


def test_a_packed_layer_keeps_its_plan_until_its_buffers_or_settings_change():
    torch.manual_seed(0)
    binary = BinaryLinear(20, 30, "relu").eval()
    packed = PackedLinear.from_binary(binary)
    x = torch.randn(2, 20)
    with torch.no_grad():
        first = packed(x)
        plan = packed._kernel_plan()
        assert packed(x) is not first and packed._kernel_plan() is plan, "kept from call to call"
        torch.testing.assert_close(first, binary(x), rtol=1e-4, atol=1e-4)

        flipped = PackedLinear.from_binary(binary)
        flipped.weight_bits.copy_(255 - flipped.weight_bits)  # every bit flipped, in place
        packed.load_state_dict(flipped.state_dict())  # an in-place write: a new plan
        assert packed._kernel_plan() is not plan
        torch.testing.assert_close(packed(x), flipped(x))
        assert not torch.allclose(packed(x), first)

        plan = packed._kernel_plan()
        packed.activation = "gelu"  # the epilogue changes: a new plan
        assert packed._kernel_plan() is not plan
        assert packed._kernel_plan().activation == lut_kernel.KERNEL_ACTIVATIONS["gelu"]

        import copy

        twin = copy.deepcopy(packed)
        assert "_plan" not in twin.__dict__, "a copy makes its own plan (views of its own buffers)"
        torch.testing.assert_close(twin(x), packed(x))
        twin.weight_bits.zero_()
        assert not torch.equal(twin(x), packed(x)), "the copy's plan views the copy's buffers"


def test_buffers_made_in_inference_mode_run_the_kernel_without_keeping_a_plan():
    torch.manual_seed(0)
    binary = BinaryLinear(12, 5).eval()
    with torch.inference_mode():
        packed = PackedLinear.from_binary(binary)
        x = torch.randn(3, 12)
        got = packed(x)
        torch.testing.assert_close(got, binary(x), rtol=1e-4, atol=1e-4)
    assert "_plan" not in packed.__dict__


def test_kernel_threads_follow_torch_and_the_explicit_setting():
    import numba

    try:
        with torch_threads(1):
            assert lut_kernel.kernel_threads() == 1
        lut_kernel.set_threads(1)
        with torch_threads(2):
            assert lut_kernel.kernel_threads() == 1
            packed_matmul(torch.randn(1, 16), torch.zeros(2, 3, dtype=torch.uint8), "numba")
            assert numba.get_num_threads() == 1
        lut_kernel.set_threads(10_000)  # never more than numba's pool
        assert lut_kernel.kernel_threads() == numba.config.NUMBA_NUM_THREADS
    finally:
        lut_kernel.set_threads(None)
    with pytest.raises(ValueError, match="at least 1 thread"):
        lut_kernel.set_threads(0)


def test_inputs_the_kernel_does_not_take_fall_back_to_pytorch(monkeypatch):
    """float64 input, softmax: the reference path answers; ``auto`` sends more than
    MAX_ROWS rows to the dense product, ``numba`` keeps them."""
    w = torch.randint(0, 2, (20, 6))
    bits = pack_bits(w, dim=0)
    x = torch.randn(lut_kernel.MAX_ROWS + 1, 20)
    calls = []
    dense = packed_module.dense_matmul
    monkeypatch.setattr(packed_module, "dense_matmul", lambda *a: calls.append("dense") or dense(*a))
    torch.testing.assert_close(packed_matmul(x, bits, "auto"), x @ w.float(), rtol=1e-4, atol=1e-4)
    assert calls == ["dense"]
    torch.testing.assert_close(packed_matmul(x, bits, "numba"), x @ w.float(), rtol=1e-4, atol=1e-4)
    assert calls == ["dense"]
    assert lut_kernel.packed_linear(x[:2].double(), bits, None, False, "linear", 1e-5) is None
    assert lut_kernel.packed_linear(x[:2], bits, None, False, "softmax", 1e-5) is None
    torch.testing.assert_close(packed_matmul(x.double(), bits, "numba"), x.double() @ w.double())


def test_a_failing_compile_warns_once_and_falls_back(monkeypatch):
    class Broken:
        @staticmethod
        def packed_linear(*args):
            raise TypeError("no lowering for this CPU\nsecond line")

    monkeypatch.setattr(lut_kernel, "_compile_seconds", None)
    monkeypatch.setattr(lut_kernel._state, "module", Broken)
    monkeypatch.setattr(lut_kernel._state, "kernel", None)  # as before the first call of a process
    monkeypatch.setattr(lut_kernel._state, "warned", False)
    monkeypatch.setattr(lut_kernel._state, "reason", None)
    x, w = torch.randn(2, 12), torch.randint(0, 2, (12, 5))
    with pytest.warns(RuntimeWarning, match=r"numba failed to compile the kernel \(TypeError: no lowering"):
        got = packed_matmul(x, pack_bits(w, dim=0), "numba")
    torch.testing.assert_close(got, x @ w.float(), rtol=1e-4, atol=1e-4)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once only
        packed_matmul(x, pack_bits(w, dim=0), "numba")
    assert "failed to compile" in lut_kernel.why_unavailable()


BLOCK_NUMBA = textwrap.dedent(
    '''
    """Test helper: make ``import numba`` fail, as on a machine without it."""
    import sys


    class _NoNumba:
        def find_spec(self, name, path=None, target=None):
            if name == "numba" or name.startswith("numba."):
                raise ImportError("No module named 'numba' (blocked for the test)")
            return None


    sys.meta_path.insert(0, _NoNumba())
    '''
)


def without_numba(tmp_path: Path) -> dict[str, str]:
    """An environment whose Python cannot import numba (a ``sitecustomize`` on the path)."""
    (tmp_path / "sitecustomize.py").write_text(BLOCK_NUMBA)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]))
    env.pop("BINEDU_NUMBA", None)
    return env


def test_without_numba_binedu_warns_once_and_computes_the_same(tmp_path):
    script = textwrap.dedent(
        """
        import warnings, torch
        from binedu import BinaryLinear, pack_model
        from binedu import lut_kernel
        layer = BinaryLinear(20, 7, "gelu").eval()
        x = torch.randn(3, 20)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            packed = pack_model(layer)
            with torch.no_grad():
                torch.testing.assert_close(packed(x), layer(x), rtol=1e-4, atol=1e-4)
                packed(x)
        messages = [str(w.message) for w in caught if "numba" in str(w.message)]
        assert len(messages) == 1, messages
        print(messages[0])
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=without_numba(tmp_path), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "numba is not installed" in done.stdout and "plain-PyTorch" in done.stdout


@pytest.mark.slow
def test_packed_model_tests_pass_without_numba(tmp_path):
    """The packed-model and KV-cache tests, run where importing numba fails: the fallback."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider"]
    cmd += ["tests/test_packed.py", "tests/test_kv_cache.py", "-W", "ignore::RuntimeWarning"]
    done = subprocess.run(cmd, cwd=ROOT, env=without_numba(tmp_path), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert " passed" in done.stdout and "skipped" not in done.stdout


@pytest.mark.slow
def test_compiled_code_is_cached_in_the_user_cache_dir(tmp_path):
    """binedu installed read-only: numba caches under $XDG_CACHE_HOME/binedu/numba, not
    next to the package, and a second process loads it instead of compiling."""
    site = tmp_path / "site"
    shutil.copytree(ROOT / "binedu", site / "binedu", ignore=shutil.ignore_patterns("__pycache__"))
    for path in [site / "binedu", *(site / "binedu").rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    env = dict(os.environ, PYTHONPATH=str(site), XDG_CACHE_HOME=str(tmp_path / "cache"), PYTHONDONTWRITEBYTECODE="1")
    env.pop("NUMBA_CACHE_DIR", None)
    env.pop("BINEDU_NUMBA", None)
    script = (
        "import torch, binedu\n"
        "import binedu.lut_kernel as k\n"
        "from binedu.packed import packed_matmul\n"
        "w = torch.randint(0, 2, (20, 9)); x = torch.randn(2, 20)\n"
        "torch.testing.assert_close(packed_matmul(x, binedu.pack_bits(w, dim=0), 'numba'), x @ w.float())\n"
        "assert k.why_unavailable() is None, k.why_unavailable()\n"
        "hits = sum(k._load().packed_linear.stats.cache_hits.values())\n"
        "print(k.cache_dir(), hits)\n"
    )
    runs = []
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        runs.append(done.stdout.split())
    try:
        assert runs[0][0] == str(tmp_path / "cache" / "binedu" / "numba")
        assert (runs[0][1], runs[1][1]) == ("0", "1"), "compiled by the first process, loaded by the second"
        cached = list((tmp_path / "cache" / "binedu" / "numba").rglob("*.nbi"))
        assert cached, "numba wrote no cache index"
        assert not list(site.rglob("*.nbi")), "nothing is written next to the installed package"
    finally:
        for path in [site / "binedu", *(site / "binedu").rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)


def test_starting_numba_keeps_torch_thread_count():
    """numba's OpenMP pool shares torch's runtime: starting it must not change the thread
    count the process set (a fresh process: the pool starts once)."""
    script = (
        "import torch; torch.set_num_threads(1)\n"
        "from binedu.packed import packed_matmul\n"
        "packed_matmul(torch.randn(1, 16), torch.zeros(2, 3, dtype=torch.uint8), 'numba')\n"
        "import binedu.lut_kernel as k; assert k.why_unavailable() is None\n"
        "print(torch.get_num_threads())\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1"]
