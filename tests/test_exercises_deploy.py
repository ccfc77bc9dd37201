"""Exercises of notebooks 06-08: the references agree with binedu and numpy, and typical
wrong answers get a useful "Not yet" (the generic checks of every registered exercise,
placeholders included, live in test_exercises.py)."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from binedu import BinaryConv2d, BinaryLinear, LanguageModel, pack_bits, unpack_bits
from binedu.course.exercises import check, exercises
from binedu.course.exercises.bitpacking import pack_byte, packed_matrix_bytes, unpack_byte
from binedu.course.exercises.core import _seal
from binedu.course.exercises.deployment import lut_dot, lut_entry, lut_table_bytes, lut_tables
from binedu.course.exercises.image_model import bncvl_parameters
from binedu.course.exercises.paper_scale import blm_parameters, bnfcl_parameters, paper_packed_megabytes

bits8 = st.lists(st.integers(0, 1), min_size=8, max_size=8)


def test_notebooks_06_to_08_have_two_to_four_exercises():
    for nb in ("06", "07", "08"):
        assert 2 <= len(exercises(nb)) <= 5, nb


@given(bits8)
def test_pack_byte_is_numpy_packbits_little_and_unpack_inverts_it(bits):
    byte = pack_byte(bits)
    assert byte == int(np.packbits(np.array(bits, dtype=np.uint8), bitorder="little")[0])
    assert byte == int(pack_bits(torch.tensor(bits))[0])
    assert unpack_byte(byte) == tuple(bits)


def test_pack_byte_worked_example_and_bad_input():
    assert pack_byte((1, 0, 1, 1, 0, 0, 0, 1)) == 0b10001101 == 141
    with pytest.raises(ValueError, match="exactly 8 values"):
        pack_byte((1, 0, 2, 0, 0, 0, 0, 0))
    with pytest.raises(ValueError, match="exactly 8 values"):
        pack_byte((1, 0))
    with pytest.raises(ValueError, match="0 to 255"):
        unpack_byte(256)


def test_big_endian_packing_is_not_yet(capsys, monkeypatch):
    """A wrong attempt gets a nudge first; the hint that names the bit order comes after a second one."""
    from binedu.course.exercises import core

    monkeypatch.setattr(core, "_WRONG", {})  # this session's earlier attempts do not count here
    big_endian = lambda bits: int("".join(map(str, bits)), 2)  # noqa: E731
    assert check("06.pack_byte", big_endian) is False
    first = capsys.readouterr().out
    assert "expected 1, got 128" in first and "Hint 1/2" in first and "least* significant" not in first
    assert check("06.pack_byte", big_endian) is False
    second = capsys.readouterr().out
    assert "Hint 2/2" in second and "least* significant" in second


def test_unpack_byte_accepts_a_list_or_a_tensor_but_not_the_wrong_order(capsys):
    assert check("06.unpack_byte", lambda b: [(b >> j) & 1 for j in range(8)], verbose=False)
    assert check("06.unpack_byte", torch.tensor, verbose=False) is False
    assert check("06.unpack_byte", lambda b: [(b >> (7 - j)) & 1 for j in range(8)]) is False
    assert "Not yet" in capsys.readouterr().out


def test_binedu_and_numpy_packing_cannot_be_handed_in(capsys):
    """A student who wraps binedu's (or numpy's) packing instead of writing it gets "write it yourself"."""
    wrappers = {
        "06.pack_byte": [
            lambda bits: int(pack_bits(torch.tensor(bits))[0]),
            lambda bits: int(np.packbits(np.array(bits, dtype=np.uint8), bitorder="little")[0]),
        ],
        "06.unpack_byte": [
            lambda b: unpack_bits(torch.tensor([b], dtype=torch.uint8), 8),
            lambda b: tuple(np.unpackbits(np.array([b], dtype=np.uint8), bitorder="little")),
        ],
        "06.packed_matrix_bytes": [lambda r, c: pack_bits(torch.zeros(r, c, dtype=torch.uint8)).numel()],
        "07.lut_entry": [lambda x, k: unpack_bits(torch.tensor([k], dtype=torch.uint8), 8).to(x.dtype) @ x],
        "07.lut_dot": [lambda x, row: unpack_bits(row, x.numel()).to(x.dtype) @ x, lut_dot],
    }
    for exercise_id, answers in wrappers.items():
        for answer in answers:
            assert check(exercise_id, answer) is False, exercise_id
            assert "write it yourself" in capsys.readouterr().out, exercise_id
    # and everything works again afterwards
    assert pack_byte((1, 0, 1, 1, 0, 0, 0, 1)) == int(pack_bits(torch.tensor([1, 0, 1, 1, 0, 0, 0, 1]))[0]) == 141


@given(st.integers(0, 300), st.integers(0, 300))
def test_packed_matrix_bytes_is_what_pack_bits_produces(rows, cols):
    packed = pack_bits(torch.zeros(rows, cols, dtype=torch.uint8))
    assert packed_matrix_bytes(rows, cols) == packed.numel()


def test_packed_matrix_bytes_forgetting_row_padding_is_not_yet(capsys):
    assert check("06.packed_matrix_bytes", lambda r, c: math.ceil(r * c / 8)) is False
    assert "(10, 100) expected 130, got 125" in capsys.readouterr().out  # each of the 10 rows pads 100 bits to 13 bytes
    with pytest.raises(ValueError, match="rows and cols"):
        packed_matrix_bytes(-1, 3)


def test_lut_tables_hold_every_partial_sum():
    g = torch.Generator().manual_seed(0)
    groups = torch.randn(3, 8, generator=g, dtype=torch.float64)
    every_byte = unpack_bits(torch.arange(256, dtype=torch.uint8).reshape(256, 1), 8, dim=1).double()  # (256, 8)
    torch.testing.assert_close(lut_tables(groups), groups @ every_byte.T)
    for k in (0, 1, 141, 255):
        torch.testing.assert_close(lut_entry(groups[0], k), groups[0] @ every_byte[k])


@given(st.integers(1, 6), st.integers(0, 2**31 - 1))
def test_lut_dot_equals_the_binary_dot_product(num_groups, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(8 * num_groups, generator=g, dtype=torch.float64)
    bits = torch.randint(0, 2, (8 * num_groups,), generator=g, dtype=torch.uint8)
    torch.testing.assert_close(lut_dot(x, pack_bits(bits)), bits.double() @ x)


def test_lut_mistakes_are_not_yet(capsys):
    # big-endian bit order inside the byte
    assert check("07.lut_entry", lambda x, k: sum(x[j] for j in range(8) if (k >> (7 - j)) & 1)) is False
    assert "expected" in capsys.readouterr().out
    # forgetting to unpack: multiplying by the byte value
    assert check("07.lut_dot", lambda x, p: (x.reshape(-1, 8).sum(1) * p.float()).sum()) is False
    assert "Not yet" in capsys.readouterr().out
    assert check("07.lut_table_bytes", 2048 // 8 * 256) is False  # entries, not bytes
    with pytest.raises(ValueError, match="need 2 bytes"):
        lut_dot(torch.zeros(16), torch.zeros(3, dtype=torch.uint8))


def test_lut_table_bytes():
    assert lut_table_bytes(2048) == 256 * 256 * 4
    assert check("07.lut_table_bytes", 262_144, verbose=False)
    assert not check("07.lut_table_bytes", 262_144 * 8, verbose=False)


def test_parameter_counts_match_binedu_layers():
    for n_x, n_units in [(3, 5), (768, 4096)]:
        assert bnfcl_parameters(n_x, n_units) == sum(p.numel() for p in BinaryLinear(n_x, n_units).parameters())
    for f, cin, cout in [(3, 3, 32), (5, 7, 4)]:
        assert bncvl_parameters(cin, cout, f) == sum(p.numel() for p in BinaryConv2d(cin, cout, f).parameters())


def test_parameter_count_mistakes_are_not_yet(capsys):
    assert check("08.bnfcl_parameters", lambda n_x, n: n_x * n) is False  # forgot the bias
    assert "expected 3149824, got 3145728" in capsys.readouterr().out
    def no_position_table(v, length, e, blocks, mlp, ff=None):
        ff = ff or 2 * e
        head, width = 0, e
        for units in [*mlp, v]:
            head, width = head + width * units + units, units
        return (v + 1) * e + blocks * (4 * (e * e + e) + e * ff + ff + ff * e + e) + head
    assert check("08.build_blm_parameters", no_position_table) is False  # forgot the BEMBL's position table
    assert "Not yet" in capsys.readouterr().out
    assert blm_parameters(30522, 256, 768, 12, (4096, 2048)) == LanguageModel.on_meta("paper-small").num_parameters()


def test_paper_large_megabytes_is_counted_on_the_meta_device():
    with torch.device("meta"):
        n = LanguageModel.from_config("paper-large").num_parameters()
    assert paper_packed_megabytes("paper-large") == pytest.approx(math.ceil(n / 8) / 1e6)

    model = LanguageModel.on_meta("paper-large")
    kept = sum(p.numel() for m in (model.embedding, model.head[-1]) for p in m.parameters())
    assert kept > n / 3  # the two layers a mixed-precision deployment keeps hold much of the model
    assert check("08.mixed_precision_mb", (4 * kept + (n - kept) / 8) / 1e6, verbose=False)
    assert not check("08.mixed_precision_mb", n / 8 / 1e6, verbose=False)  # everything at 1 bit
    assert not check("08.mixed_precision_mb", n * 4 / 1e6, verbose=False)  # everything in float32


@given(st.integers(1, 40), st.integers(1, 20))
def test_packing_experiment_measures_the_row_padding(in_features, out_features):
    from binedu.course.exercises.bitpacking import packing_experiment

    run = packing_experiment(in_features=in_features, out_features=out_features)
    bias_bytes = math.ceil(out_features / 8)
    assert run.values["packed_bytes"] == packed_matrix_bytes(out_features, in_features) + bias_bytes
    assert run.values["bits_per_parameter"] >= 1.0
    assert (run.values["bits_per_parameter"] == 1.0) == (in_features % 8 == 0 and out_features % 8 == 0)


def test_export_experiment_grades_the_zero_threshold_and_leaves_the_model_alone(capsys):
    from binedu import ImageClassifier
    from binedu.course.exercises.deployment import export_experiment
    from binedu.data import image_data

    torch.manual_seed(0)
    model = ImageClassifier.from_config("tiny")
    with torch.no_grad():  # latent weights far from 0 on average: a zero threshold makes almost every bit 1
        for p in model.parameters():
            p.add_(1.0)
    val = image_data("digits", limit=100).val
    before = {k: v.clone() for k, v in model.state_dict().items()}
    same = export_experiment(model, val)
    assert same.values["acc"] == same.values["acc_eq1"] and same.settings == {"threshold": "mean"}
    zero = export_experiment(model, val, threshold="zero")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    right = zero.values["acc_eq1"] - zero.values["acc"] >= 0.2
    assert check("07.predict_export_threshold", "much lower", measured=zero) == right
    assert ("Your run measured" in capsys.readouterr().out) == right  # a first wrong guess shows no numbers
    with pytest.raises(ValueError, match="threshold"):
        export_experiment(model, val, threshold="median")
    graded = _seal(settings={"threshold": "zero"}, values={"acc_eq1": 0.9, "acc": 0.89})
    assert check("07.predict_export_threshold", "about the same", measured=graded, verbose=False)
