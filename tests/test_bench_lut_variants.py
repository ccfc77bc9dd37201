"""Smoke test of bench/bench_lut_variants.py: every eager formulation computes the packed
product (the script checks each against the unpacked one before timing it) and the table
prints. Its timings are not part of the test suite."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import bench_lut_variants  # noqa: E402

from binedu.packed import dense_matmul  # noqa: E402


def test_quick_run_prints_every_eager_variant():
    text = bench_lut_variants.main(["--quick"])
    for name in ("float32", "lut (binedu)", "lut, index_select int32", "lut, index_select int32, in blocks"):
        assert f"256x256, {name} " in text


@pytest.mark.parametrize("n_x, n_units", [(16, 5), (64, 33)])
def test_int32_lookup_and_unpack_sum_equal_the_product(n_x, n_units, monkeypatch):
    torch.manual_seed(n_x)
    weight_bits = torch.randint(0, 256, (n_x // 8, n_units), dtype=torch.uint8)
    x = torch.randn(n_x)
    expected = dense_matmul(x[None], weight_bits)[0]
    table = bench_lut_variants.one_table(x, n_x // 8)
    torch.testing.assert_close(bench_lut_variants.lookup_int32(table, weight_bits), expected, rtol=1e-5, atol=1e-5)
    chunked = bench_lut_variants.lookup_int32_chunked
    monkeypatch.setattr(bench_lut_variants, "LUT_CHUNK_ELEMENTS", n_units)  # one group per block
    torch.testing.assert_close(chunked(table, weight_bits), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(bench_lut_variants.unpack_sum(x, weight_bits), expected, rtol=1e-5, atol=1e-5)


def test_a_wrong_kernel_is_caught(monkeypatch):
    monkeypatch.setattr(bench_lut_variants, "lookup_int32", lambda table, bits: torch.zeros(bits.shape[1]))
    with pytest.raises(AssertionError, match="different product"):
        bench_lut_variants.main(["--quick"])
