"""memory_report: the 32x, counted per layer, the same before and after packing."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from binedu import BinaryLinear, ImageClassifier, LanguageModel, memory_report, pack_model
from binedu.units import format_bytes


def numbers(report) -> list[tuple]:
    return [(r.name, r.parameters, r.float32_bytes, r.packed_bytes) for r in report.rows]


@pytest.mark.parametrize("cls", [LanguageModel, ImageClassifier])
def test_binary_and_packed_reports_agree(cls):
    model = cls.from_config("tiny")
    before, after = memory_report(model), memory_report(pack_model(model))
    assert numbers(before) == numbers(after)
    assert before.total_params == after.total_params == model.num_parameters()
    assert before.float32_bytes == 4 * model.num_parameters()
    packed = pack_model(model)
    assert after.packed_bytes == sum(b.numel() for b in packed.buffers())  # what is really held
    assert {r.type for r in after.rows} <= {"PackedLinear", "PackedConv2d", "PackedEmbedding"}


def test_rows_count_each_layer_with_per_row_padding():
    model = nn.Sequential(BinaryLinear(10, 3), nn.ReLU(), BinaryLinear(3, 16))
    report = memory_report(model)
    assert [(r.name, r.type, r.parameters) for r in report.rows] == [
        ("0", "BinaryLinear", 33),
        ("2", "BinaryLinear", 64),
    ]
    # 10 inputs need 2 bytes per output column, 3 bias bits 1 byte; 3 inputs 1 byte, 16 bias bits 2 bytes
    assert [r.packed_bytes for r in report.rows] == [2 * 3 + 1, 1 * 16 + 2]
    assert report.rows[1].ratio == pytest.approx(4 * 64 / 18)


def test_paper_small_is_154_4_million_parameters_and_32x():
    with torch.device("meta"):  # shapes only: no memory
        model = LanguageModel.from_config("paper-small")
    report = memory_report(model)
    assert report.total_params == model.num_parameters()
    assert round(report.total_params / 1e6, 1) == 154.4
    assert 31.9 < report.ratio <= 32


def test_float_tensors_are_listed_as_kept():
    report = memory_report(LanguageModel.from_config("tiny", binary=False))
    assert report.ratio == 1.0 and not any(r.packable for r in report.rows)
    mixed = memory_report(nn.Sequential(BinaryLinear(8, 8), nn.Linear(8, 8)))
    assert [r.packable for r in mixed.rows] == [True, False]
    assert mixed.rows[1].packed_bytes == mixed.rows[1].float32_bytes == 4 * 72


def test_table_and_dict():
    report = memory_report(ImageClassifier.from_config("tiny"))
    text = str(report)
    lines = text.splitlines()
    assert lines[0].split() == ["Layer", "(type)", "Params", "float32", "packed", "ratio"]
    assert len(lines) == len(report.rows) + 5  # header, rule, rows, rule, total, summary
    assert "layers.0 (BinaryConv2d)" in text
    assert f"{report.total_params:,}" in lines[-2] and f"{report.ratio:.2f}x" in lines[-1]
    data = json.loads(json.dumps(report.to_dict()))
    assert data["total_params"] == report.total_params and len(data["rows"]) == len(report.rows)
    assert data["rows"][0]["ratio"] == pytest.approx(report.rows[0].ratio)


@pytest.mark.parametrize(
    "n, text", [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (5 * 2**20, "5.0 MiB"), (3 * 2**30, "3.0 GiB")]
)
def test_format_bytes(n, text):
    assert format_bytes(n, binary=True) == text
