"""Per-layer flip rates and bits changed since initialisation (History, fit)."""

import pytest
import torch
from train_fixtures import image_model, image_set

from binedu import History
from binedu.train import binary_bits, fit, flip_ratio, layer_flip_ratios


def test_layer_flip_ratios_count_each_layers_bits_together():
    before = {"a.weight": torch.zeros(6, dtype=torch.bool), "a.bias": torch.zeros(2, dtype=torch.bool),
              "b.weight": torch.zeros(4, dtype=torch.bool)}
    after = {k: v.clone() for k, v in before.items()}
    after["a.weight"][:3] = True
    after["a.bias"][0] = True
    assert layer_flip_ratios(before, after) == {"a": 4 / 8, "b": 0.0}
    assert flip_ratio(before, after) == pytest.approx(4 / 12)
    with pytest.raises(ValueError, match="different models"):
        layer_flip_ratios(before, {"a.weight": after["a.weight"]})


def test_fit_records_per_layer_flips_and_bits_changed_since_init():
    model = image_model()
    start = binary_bits(model)
    h = fit(model, image_set(40), epochs=2, batch_size=8, lr=5e-3, record_every=2, seed=0, progress=False)
    layers = {k.rsplit(".", 1)[0] for k in start}
    assert set(h.layer_flips) == layers
    assert all(len(v) == len(h.flip_steps) for v in h.layer_flips.values())
    assert len(h.changed_since_init) == len(h.flip_steps) > 0
    assert h.changed_since_init[-1] == pytest.approx(flip_ratio(start, binary_bits(model)))
    # the bits changed since init cannot exceed all the flips on the way there
    running = 0.0
    for flips, changed in zip(h.flip_ratio, h.changed_since_init, strict=True):
        running += flips
        assert changed <= running + 1e-12
    sizes = {layer: sum(v.numel() for k, v in start.items() if k.rsplit(".", 1)[0] == layer) for layer in layers}
    total = sum(sizes.values())
    for i, overall in enumerate(h.flip_ratio):  # the layers' flips add up to the overall ratio
        assert sum(h.layer_flips[layer][i] * sizes[layer] for layer in layers) / total == pytest.approx(overall)


def test_float_model_records_no_flips_and_old_histories_still_load():
    h = fit(image_model(binary=False), image_set(16), epochs=1, batch_size=8, record_every=1, progress=False)
    assert h.layer_flips == {} and h.changed_since_init == []
    old = {k: v for k, v in h.to_dict().items() if k not in ("layer_flips", "changed_since_init")}
    assert History.from_dict(old).changed_since_init == []
