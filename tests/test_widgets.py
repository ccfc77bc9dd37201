"""The notebook widgets: driven programmatically, their displayed numbers follow binedu."""

import re

import pytest
import torch

from binedu import ImageClassifier, LanguageModel
from binedu.course.widgets import (
    CUSTOM,
    PackedBytesWidget,
    binarization_widget,
    memory_widget,
    packed_bytes_widget,
    paper_model_parameters,
    threshold_bits,
)
from binedu.quantize import quantize
from binedu.units import PRECISION_BITS, format_bytes

PNG = b"\x89PNG"


def shown_bytes(w) -> int:
    """The exact byte count printed in the memory widget's summary."""
    match = re.search(r"\(([\d,]+) bytes\)", w.summary.value)
    assert match, w.summary.value
    return int(match.group(1).replace(",", ""))


def shown_ratio(w) -> float:
    match = re.search(r"([\d.]+)&times;</b> smaller", w.summary.value)
    assert match, w.summary.value
    return float(match.group(1))


def test_paper_parameter_counts_match_real_models():
    assert paper_model_parameters("paper-3x3") == ImageClassifier.from_config("paper-3x3").num_parameters()
    assert paper_model_parameters("paper-5x5") == ImageClassifier.from_config("paper-5x5").num_parameters()
    assert round(paper_model_parameters("paper-small") / 1e5) == 1544  # Table 3: 154.4 M
    assert round(paper_model_parameters("paper-large") / 1e5) == 3329  # Table 3: 332.8 M (332.86 M)
    with torch.device("meta"):
        assert paper_model_parameters("paper-small") == LanguageModel.from_config("paper-small").num_parameters()
    with pytest.raises(ValueError, match="unknown model 'paper-huge'"):
        paper_model_parameters("paper-huge")


def test_memory_widget_controls_have_stable_descriptions():
    w = memory_widget()
    assert (w.model.description, w.precision.description, w.params.description) == (
        "Model:",
        "Precision:",
        "Parameters:",
    )
    assert bytes(w.plot.value).startswith(PNG)


@pytest.mark.parametrize("model", ["paper-3x3", "paper-5x5", "paper-small", "paper-large"])
def test_memory_widget_bytes_per_precision(model):
    w = memory_widget()
    w.model.value = model
    n = paper_model_parameters(model)
    for precision, bits in PRECISION_BITS.items():
        w.precision.value = precision
        expected = -(-n * bits // 8)
        assert w.num_bytes == shown_bytes(w) == expected
        assert f"{n:,} parameters" in w.summary.value
        assert format_bytes(expected) in w.summary.value
    w.precision.value = "1 bit"
    assert shown_ratio(w) == pytest.approx(32.0, abs=0.05)
    w.precision.value = "int8"
    assert shown_ratio(w) == pytest.approx(4.0)


def test_memory_widget_custom_count_and_slider_switches_to_custom():
    w = memory_widget("paper-small", "float32")
    assert w.params.value == pytest.approx(paper_model_parameters("paper-small"))
    assert w.model.value == "paper-small"  # showing the count on the slider did not select custom
    before = w.plot.value
    w.params.value = 7e9
    assert w.model.value == CUSTOM
    assert shown_bytes(w) == 28_000_000_000
    w.precision.value = "1 bit"
    assert shown_bytes(w) == 875_000_000
    assert "875 MB" in w.summary.value
    assert w.plot.value != before
    w.model.value = "paper-3x3"
    n = paper_model_parameters("paper-3x3")
    assert shown_bytes(w) == -(-n // 8) and w.params.value == pytest.approx(n)


def test_memory_widgets_are_independent():
    a, b = memory_widget(), memory_widget()
    assert a is not b and a.model is not b.model
    a.precision.value = "float32"
    assert b.precision.value == "1 bit"
    n = paper_model_parameters("paper-3x3")
    assert shown_bytes(a) == 4 * n and shown_bytes(b) == -(-n // 8)  # n / 8 rounded up


def test_format_bytes():
    assert format_bytes(0) == "0 B"
    assert format_bytes(999) == "999 B"
    assert format_bytes(175_457) == "175 kB"
    assert format_bytes(1.33e9) == "1.33 GB"
    assert format_bytes(4e12) == "4 TB"
    with pytest.raises(ValueError, match="negative"):
        format_bytes(-1)


def test_threshold_rules():
    p = torch.tensor([1.0, 2.0, 3.0, 10.0])
    bits, t = threshold_bits(p, "mean")
    assert torch.equal(bits, quantize(p)) and t == 4.0
    bits, t = threshold_bits(p, "median")
    assert torch.equal(bits, torch.tensor([0.0, 0.0, 1.0, 1.0])) and t == 2.0
    bits, t = threshold_bits(p, "zero")
    assert torch.equal(bits, torch.ones(4)) and t == 0.0
    with pytest.raises(ValueError, match="unknown threshold rule 'max'"):
        threshold_bits(p, "max")


def test_binarization_widget_controls_have_stable_descriptions():
    w = binarization_widget()
    got = [c.description for c in (w.distribution, w.scale, w.shift, w.seed, w.threshold)]
    assert got == ["Distribution:", "Scale:", "Shift:", "Seed:", "Threshold:"]
    assert bytes(w.plot.value).startswith(PNG)


def shown_bits(w) -> list[int]:
    """The kernel bits printed in the widget's bit table, row by row (bias bits dropped)."""
    rows = re.findall(r"<tr>(.*?)</tr>", w.bits_html.value)
    return [int(v) for row in rows for v in re.findall(r"<td>(\d)</td>", row)]


def test_binarization_widget_shows_eq1_bits_and_the_layer_output():
    w = binarization_widget()
    s = w.state
    assert torch.equal(s["weight_bits"], quantize(s["weight"]))
    assert torch.equal(s["bias_bits"], quantize(s["bias"]))
    assert shown_bits(w) == [int(v) for v in s["weight_bits"].flatten().tolist()]
    # the output is what the real BinaryLinear computes with these latent weights (Alg. 2)
    with torch.no_grad():
        w.layer.weight.copy_(s["weight"])
        w.layer.bias.copy_(s["bias"])
        expected = w.layer(w.x)[0]
    assert torch.allclose(s["output"], expected, atol=1e-6)
    shown = [float(v) for v in re.findall(r"<td>(-?\d+\.\d+)</td>", w.output_html.value)]
    assert shown[1::2] == pytest.approx(expected.tolist(), abs=1e-3)


def test_mean_threshold_ignores_shift_and_scale_but_zero_threshold_does_not():
    w = binarization_widget()
    bits = w.state["weight_bits"].clone()
    out = w.state["output"].clone()
    w.scale.value, w.shift.value = 2.5, 1.7
    assert torch.equal(w.state["weight_bits"], bits)  # Eq. 1 compares with the tensor's own mean
    assert torch.allclose(w.state["output"], out)
    w.threshold.value = "zero"
    w.scale.value = 0.5
    assert w.state["weight_bits"].mean() > 0.9  # shifted up: nearly every weight is above zero
    w.shift.value = -2.0
    assert w.state["weight_bits"].mean() < 0.1
    assert shown_bits(w) == [int(v) for v in w.state["weight_bits"].flatten().tolist()]


def test_binarization_widget_reacts_to_seed_and_distribution():
    w = binarization_widget()
    before, png = w.state["weight"].clone(), w.plot.value
    w.seed.value = 5
    assert not torch.equal(w.state["weight"], before) and w.plot.value != png
    w.distribution.value = "skewed"
    w.threshold.value = "median"
    assert int(w.state["weight_bits"].sum()) == 16  # half of the 32 kernel entries lie above the median
    w.threshold.value = "mean"
    assert int(w.state["weight_bits"].sum()) < 16  # skewed right: the mean lies above the median


def test_binarization_widgets_are_independent():
    a, b = binarization_widget(), binarization_widget()
    assert a.layer is not b.layer
    a.shift.value = 1.0
    a.threshold.value = "zero"
    assert b.shift.value == 0.0 and b.state["rule"] == "mean"
    assert not torch.equal(a.state["weight"], b.state["weight"])


def test_packed_bytes_widget_shows_the_bytes_of_the_chosen_row():
    model = ImageClassifier.from_config("tiny")
    w = packed_bytes_widget(model)
    assert (w.layer.description, w.row.description, w.offset.description) == ("Layer:", "Row:", "Byte offset:")
    assert "layers.1.weight" in w.layer.options and "layers.1.bias" in w.layer.options
    w.layer.value = "layers.1.weight"  # (16, 16, 3, 3): 16 rows of 144 bits = 18 bytes
    assert (w.row.max, w.offset.max) == (15, 18 - PackedBytesWidget.BYTES_SHOWN)
    w.row.value, w.offset.value = 5, 3
    bits = quantize(model.layers[1].weight.detach())[5].flatten()
    expected_bits = [int(b) for b in bits[24:88].tolist()]
    assert w.state["bits"] == expected_bits
    expected_bytes = [sum(expected_bits[8 * i + j] << j for j in range(8)) for i in range(8)]  # first bit = lsb
    assert w.state["bytes"] == expected_bytes
    assert bytes(expected_bytes).hex(" ").upper() in w.table.value
    assert f"<td>{expected_bytes[0]}</td><td>0x{expected_bytes[0]:02X}</td>" in w.table.value
    assert "2,304 parameters" in w.summary.value and "9,216 bytes" in w.summary.value


def test_packed_bytes_widget_short_rows_and_bias_and_errors():
    model = ImageClassifier.from_config("tiny")
    w = packed_bytes_widget(model)
    w.layer.value = "layers.0.weight"  # (16, 1, 3, 3): rows of 9 bits = 2 bytes, the last one padded
    w.row.value = 2
    assert w.offset.max == 0 and len(w.state["bytes"]) == 2
    assert w.state["bits"] == [int(b) for b in quantize(model.layers[0].weight.detach())[2].flatten().tolist()]
    w.layer.value = "layers.0.bias"  # zero at init: all bits 0 (Eq. 1 ties)
    assert w.row.max == 0 and w.state["bytes"] == [0, 0]
    with pytest.raises(ValueError, match="no binary layers"):
        packed_bytes_widget(ImageClassifier.from_config("tiny", binary=False))


def test_memory_widget_ignores_the_sliders_snapped_echo():
    # in the browser, the log slider rounds the count to its step and sends it back
    import math

    from binedu.course.widgets import memory_widget

    w = memory_widget()
    snapped = 10 ** (round(math.log10(w.num_params) / w.params.step) * w.params.step)
    w.params.value = snapped
    assert w.model.value == "paper-3x3"
    w.params.value = snapped * 10  # a real move selects the custom count
    assert w.model.value != "paper-3x3"
