"""fit(): the training loop, its history and its reproducibility (binedu.train)."""

from __future__ import annotations

import pytest
import torch
from helpers import same_weights
from train_fixtures import Poisoned, counting_sequences, image_model, image_set, language_model

from binedu.data import image_data
from binedu.history import History
from binedu.schedule import learning_rate
from binedu.train import Callback, binary_bits, fit, flip_ratio, layer_grad_norms, recipe


def test_binary_image_model_learns_and_history_is_complete():
    model = image_model()
    data = image_data("digits", limit=400)
    h = fit(model, data.train, data.val, epochs=3, batch_size=16, lr=2e-3, warmup_steps=4, record_every=5, progress=False)
    steps = 3 * 25
    assert h.steps == list(range(steps))
    assert len(h.loss) == len(h.lr) == steps
    assert h.lr == pytest.approx([learning_rate(s, 2e-3, 4, steps - 4) for s in range(steps)])
    assert [e["epoch"] for e in h.epochs] == [1, 2, 3]
    assert {"train_loss", "val_loss", "train_acc", "val_acc"} <= set(h.epochs[0])
    assert "val_ppl" not in h.epochs[0]
    assert h.epochs[-1]["train_acc"] > 0.4 and h.epochs[-1]["val_acc"] > 0.4  # chance is 0.1
    assert h.epochs[-1]["train_loss"] < h.epochs[0]["train_loss"]
    assert h.flip_steps == h.grad_steps == list(range(4, steps, 5))
    assert all(0.0 <= r <= 1.0 for r in h.flip_ratio) and max(h.flip_ratio) > 0
    layers = {"layers.0", "layers.1", "layers.3", "layers.4", "layers.6", "layers.9", "layers.10"}
    assert set(h.grad_norms) == layers
    assert all(len(v) == len(h.grad_steps) and min(v) > 0 for v in h.grad_norms.values())
    assert h.meta["seed"] == 0 and h.meta["config"]["binary"] is True


def test_same_seed_gives_identical_history_and_weights():
    runs = []
    for _ in range(2):
        model = image_model(binary=False)  # dropout draws random numbers too
        h = fit(model, image_set(50), image_set(20, 1), epochs=2, batch_size=16, seed=3, record_every=2, progress=False)
        runs.append((h.to_dict(), model.state_dict()))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(runs[0][1][k], runs[1][1][k]) for k in runs[0][1])


def test_another_seed_changes_the_data_order():
    a = fit(image_model(), image_set(50), epochs=1, batch_size=10, seed=0, progress=False)
    b = fit(image_model(), image_set(50), epochs=1, batch_size=10, seed=1, progress=False)
    assert a.loss != b.loss


def test_language_model_records_perplexity_and_learns():
    model = language_model()
    h = fit(
        model, counting_sequences(48), counting_sequences(16, seed=1), epochs=8, batch_size=8, lr=1e-2,
        optimizer="adamw", warmup_steps=5, progress=False,
    )  # fmt: skip
    first, last = h.epochs[0], h.epochs[-1]
    assert {"train_ppl", "val_ppl", "train_acc", "val_acc"} <= set(last)
    assert last["val_ppl"] == pytest.approx(torch.tensor(last["val_loss"]).exp().item())
    assert last["val_loss"] < first["val_loss"]
    assert any(name.startswith("blocks.0.attention.") for name in h.grad_norms)
    assert "embedding" in h.grad_norms and "head.1" in h.grad_norms


def test_training_loss_ignores_padding():
    """The same sequences padded to different lengths give the same training losses."""
    seqs = counting_sequences(16, length=5)
    longer = type(seqs)([s[s != 0].tolist() for s in seqs.items], 7)
    kw = dict(epochs=1, batch_size=4, lr=1e-2, progress=False, optimizer="adamw")
    # the longer model holds the shorter one's parameters (its extra positions only see padding)
    short_model, long_model = language_model(max_len=5), language_model(max_len=7)
    with torch.no_grad():
        for (name, p), q in zip(short_model.named_parameters(), long_model.parameters(), strict=True):
            q[: p.shape[0]].copy_(p) if name == "embedding.position_weight" else q.copy_(p)
    a = fit(short_model, seqs, **kw)
    b = fit(long_model, longer, **kw)
    assert b.loss == pytest.approx(a.loss, rel=1e-4)
    assert b.epochs[0]["train_loss"] == pytest.approx(a.epochs[0]["train_loss"], rel=1e-4)


def test_pad_id_none_counts_every_target():
    """pad_id=None: no target is padding, so the padded positions count too."""
    seqs = counting_sequences(16, length=5)
    kw = dict(epochs=1, batch_size=4, lr=1e-2, progress=False, optimizer="adamw")
    every = fit(language_model(max_len=5), seqs, pad_id=None, **kw)
    real = fit(language_model(max_len=5), seqs, **kw)
    assert len(every.loss) == len(real.loss) and every.loss != pytest.approx(real.loss, rel=1e-3)


def test_models_without_normalization_and_float_models_train():
    h = fit(image_model(normalize=False), image_set(32), epochs=1, batch_size=8, record_every=2, progress=False)
    assert len(h.flip_ratio) == 2 and h.grad_norms
    f = fit(image_model(binary=False), image_set(32), epochs=1, batch_size=8, record_every=2, progress=False)
    assert f.flip_ratio == [] and len(f.grad_steps) == 2 and f.grad_norms


def test_max_steps_stops_and_records_a_partial_epoch():
    h = fit(image_model(), image_set(40), image_set(10), epochs=3, batch_size=10, max_steps=6, progress=False)
    assert len(h.steps) == 6
    assert [e["epoch"] for e in h.epochs] == [1, 2]
    assert h.epochs[-1]["partial"] is True and "partial" not in h.epochs[0]
    assert h.epochs[-1]["step"] == 6
    # the schedule still follows the 3 planned epochs, so a stopped run can resume exactly
    assert h.lr[-1] == pytest.approx(learning_rate(5, 1e-3, 20, 0))


def test_history_argument_appends_after_the_earlier_run():
    model = image_model()
    h = fit(model, image_set(20), epochs=1, batch_size=10, record_every=1, progress=False)
    same = fit(model, image_set(20), epochs=2, batch_size=10, record_every=1, progress=False, history=h)
    assert same is h
    assert h.steps == list(range(6)) and h.flip_steps == list(range(6))
    assert [e["epoch"] for e in h.epochs] == [1, 2, 3]


def test_progress_bar_and_epoch_callback(capsys):
    records = []
    fit(image_model(), image_set(20), epochs=2, batch_size=10, progress=False, on_epoch=records.append)
    quiet = capsys.readouterr()
    assert quiet.out == "" and quiet.err == ""
    assert [r["epoch"] for r in records] == [1, 2]
    fit(image_model(), image_set(20), epochs=1, batch_size=10, progress=True)
    shown = capsys.readouterr()
    assert "epoch 1/1" in shown.err and "train_loss=" in shown.out + shown.err


def test_flip_ratio_counts_changed_bits_over_all_parameters():
    model = image_model()
    before = binary_bits(model)
    total = sum(b.numel() for b in before.values())
    with torch.no_grad():
        w = model.layers[0].weight
        w.view(-1)[torch.argmin(w.view(-1))] = 1e3  # one bit 0 -> 1 (the mean moves a little too)
    after = binary_bits(model)
    changed = sum(int((before[k] != after[k]).sum()) for k in before)
    assert changed >= 1
    assert flip_ratio(before, after) == pytest.approx(changed / total)
    assert flip_ratio(before, before) == 0.0
    assert binary_bits(image_model(binary=False)) == {}


def test_layer_grad_norms_are_the_l2_norms_of_each_layers_gradients():
    model = image_model()
    x, y = image_set(8).tensors
    torch.nn.functional.cross_entropy(model(x), y).backward()
    norms = layer_grad_norms(model)
    layer = model.layers[0]
    expected = torch.sqrt(layer.weight.grad.pow(2).sum() + layer.bias.grad.pow(2).sum())
    assert norms["layers.0"] == pytest.approx(float(expected), rel=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(epochs=0), "epochs"),
        (dict(max_steps=0), "max_steps"),
        (dict(optimizer="sgd"), "unknown optimizer"),
        (dict(resume=True), "checkpoint"),
        (dict(device="tpu"), "device"),
    ],
)
def test_bad_arguments_raise_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        fit(image_model(), image_set(10), progress=False, **kwargs)


def test_empty_training_set_and_parameterless_model_are_refused():
    with pytest.raises(ValueError, match="empty"):
        fit(image_model(), image_set(0), progress=False)

    class Frozen(torch.nn.Module):
        def forward(self, x):
            return x.flatten(1)[:, :10]

    with pytest.raises(ValueError, match="no trainable parameters"):
        fit(Frozen(), image_set(10), progress=False)


def test_recipes_follow_the_paper():
    image = recipe("image", "paper-3x3")
    assert (image["optimizer"], image["lr"], image["batch_size"]) == ("adam", 1e-4, 64)
    assert (image["warmup_steps"], image["decay_steps"], image["epochs"]) == (20, 1100, 1000)
    lm = recipe("language", "paper-small")
    assert (lm["optimizer"], lm["lr"], lm["epochs"]) == ("adamw", 1e-5, 100)
    assert isinstance(History(), History)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(lr=float("inf")), "lr must be a finite number"),
        (dict(lr=float("nan")), "lr must be a finite number"),
        (dict(lr=1e30), "lr must be a finite number in"),
        (dict(lr=0.0), "lr must be > 0"),
        (dict(weight_decay=float("nan")), "weight_decay"),
        (dict(weight_decay=-0.1), "weight_decay"),
        (dict(min_lr_ratio=2.0), "min_lr_ratio"),
        (dict(warmup_steps=-1), "warmup_steps"),
        (dict(decay_steps=-5), "decay_steps"),
        (dict(checkpoint_every=-1), "checkpoint_every"),
    ],
)
def test_non_finite_or_out_of_range_hyperparameters_are_refused_before_anything_is_written(tmp_path, kwargs, message):
    path = tmp_path / "c.safetensors"
    with pytest.raises(ValueError, match=message):
        fit(image_model(), image_set(10), progress=False, checkpoint=path, **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_a_nan_loss_stops_training_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    from binedu.train import TrainingDiverged
    from binedu.train_checkpoint import read_training_checkpoint

    path = tmp_path / "c.safetensors"
    with pytest.raises(TrainingDiverged, match="diverged at step 4: the loss is nan; the checkpoint of step 3 is kept"):
        fit(image_model(), Poisoned(image_set(40), 8 * 3), epochs=1, batch_size=8, checkpoint=path, checkpoint_every=1, progress=False)
    saved = read_training_checkpoint(path)
    assert saved.state["step"] == 3
    assert all(bool(t.isfinite().all()) for t in saved.model_state.values())


def test_non_finite_latents_stop_training_even_when_the_loss_is_finite(tmp_path):
    """A binary model's loss only sees the latents' bits, so lr=inf once gave NaN latents and a finite loss."""
    from binedu.train import TrainingDiverged

    model = image_model()
    calls = []

    def blow_up(grad):  # one infinite gradient in the 2nd backward pass: Adam turns it into a NaN latent
        calls.append(1)
        return grad * float("inf") if len(calls) == 2 else grad

    model.layers[0].weight.register_hook(blow_up)
    with pytest.raises(TrainingDiverged, match=r"at step 2: latent parameters are NaN or infinite \(layers.0.weight\); no checkpoint"):
        fit(model, image_set(40), epochs=1, batch_size=8, checkpoint=tmp_path / "c.safetensors", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_on_start_runs_after_the_checks_and_before_the_first_step():
    events = []
    with pytest.raises(ValueError):
        fit(image_model(), image_set(10), lr=float("nan"), progress=False, on_start=lambda: events.append("start"))
    assert events == []
    fit(image_model(), image_set(10), epochs=1, batch_size=10, progress=False,
        on_start=lambda: events.append("start"), on_epoch=lambda r: events.append(r["epoch"]))  # fmt: skip
    assert events == ["start", 1]


@pytest.mark.parametrize(("device", "message"), [("meta", "unsupported device 'meta'"), ("cuda:99", "cuda")])
def test_devices_that_cannot_train_are_refused(device, message):
    from binedu.train import resolve_device

    with pytest.raises(ValueError, match=message):
        resolve_device(device)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int16, torch.int8, torch.bool, torch.float32])
def test_token_tensors_of_another_dtype_get_a_clear_error_packed_or_not(dtype):
    """uint8 ids once indexed as a mask and int16 ones failed with an IndexError."""
    from binedu import pack_model

    model = language_model()
    for m in (model, pack_model(model)):
        with pytest.raises(ValueError, match=f"integer tensor of int64 \\(or int32\\) ids, got dtype {dtype}"):
            m(torch.ones(2, 4, dtype=dtype))
    assert model(torch.ones(2, 4, dtype=torch.int32)).shape == model(torch.ones(2, 4, dtype=torch.long)).shape


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16, torch.uint8])
def test_packed_and_training_image_models_accept_the_same_image_dtypes(dtype):
    from binedu import pack_model

    model = image_model()
    images = image_set(2).tensors[0]
    for m in (model, pack_model(model)):
        with pytest.raises(ValueError, match=f"images must be a floating-point tensor of dtype float32, got {dtype}"):
            m(images.to(dtype))
        assert m(images).shape == (2, 10)


def test_pack_refuses_non_finite_latents():
    from binedu import pack_model

    model = image_model()
    with torch.no_grad():
        model.layers[0].weight[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"cannot pack ImageClassifier: NaN or infinite latent parameters in layers.0.weight"):
        pack_model(model)


class _Hooks(Callback):
    """A recipe's part added without editing the loop: it sees every step, may change the
    step's rate, adds a loss term and clips the latent weights after each update."""

    def __init__(self, rate: float | None = None, weight: float = 0.0, clip: tuple[float, float] | None = None):
        self.rate, self.weight, self.clip = rate, weight, clip
        self.events: list[tuple[str, int]] = []

    def on_epoch_start(self, run, epoch):
        self.events.append(("epoch", epoch))

    def extra_loss(self, run, step):
        self.events.append(("loss", step.number))
        return self.weight * sum(p.square().sum() for p in run.model.parameters())

    def on_after_backward(self, run, step):
        assert all(p.grad is not None for p in run.model.parameters())
        if self.rate is not None:
            step.rate = self.rate

    def on_step_end(self, run, step):
        self.events.append(("step", step.number))
        if self.clip is not None:
            with torch.no_grad():
                for p in run.model.parameters():
                    p.clamp_(*self.clip)


def _hooked(*parts, **kwargs):
    model = image_model()
    h = fit(model, image_set(30), epochs=2, batch_size=10, progress=False, callbacks=list(parts), **kwargs)
    return model, h


def test_a_callback_sees_every_step_in_order_and_a_zero_extra_loss_changes_nothing():
    hooks = _Hooks()
    model, h = _hooked(hooks)
    plain_model, plain = _hooked()
    expected = [e for epoch in range(2) for e in [("epoch", epoch)] + [(k, 3 * epoch + s) for s in range(3) for k in ("loss", "step")]]
    assert hooks.events == expected
    assert same_weights(model, plain_model) and h.to_dict() == plain.to_dict()


def test_an_extra_loss_term_trains_a_different_model_but_the_recorded_loss_stays_the_tasks():
    model, h = _hooked(_Hooks(weight=1.0))
    plain_model, plain = _hooked()
    assert h.loss[0] == plain.loss[0]  # the first step's cross-entropy, before any update
    assert not same_weights(model, plain_model) and h.loss[1:] != plain.loss[1:]


def test_a_hook_can_set_the_rate_of_each_step_and_clip_the_latents():
    model = image_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    h = fit(model, image_set(30), epochs=1, batch_size=10, progress=False, callbacks=[_Hooks(rate=0.0)])
    assert h.lr == [0.0, 0.0, 0.0] and all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    clipped, _ = _hooked(_Hooks(clip=(0.3, 0.7)))
    free, _ = _hooked()
    assert all(float(p.detach().min()) >= 0.3 and float(p.detach().max()) <= 0.7 for p in clipped.parameters())
    assert any(float(p.detach().min()) < 0.3 or float(p.detach().max()) > 0.7 for p in free.parameters())


def test_tqdm_disable_turns_the_bar_off_but_keeps_the_epoch_records(monkeypatch, capsys):
    """The docs site executes notebooks with TQDM_DISABLE=1: a bar there would be a widget
    with no kernel behind it; the epoch records still print."""
    from torch.utils.data import TensorDataset

    from binedu import BinaryLinear

    x = torch.randn(64, 4, generator=torch.Generator().manual_seed(0))
    data = TensorDataset(x, (x[:, 0] > 0).long())
    monkeypatch.setenv("TQDM_DISABLE", "1")
    fit(torch.nn.Sequential(BinaryLinear(4, 2)), data, epochs=2, batch_size=16, progress=True)
    out, err = capsys.readouterr()
    assert "epoch 1 step 4" in out and "epoch 2 step 8" in out
    assert "step/s" not in err and "it/s" not in err and "%|" not in err, err
    monkeypatch.setenv("TQDM_DISABLE", "0")
    fit(torch.nn.Sequential(BinaryLinear(4, 2)), data, epochs=1, batch_size=16, progress=True)
    assert "%|" in capsys.readouterr().err, "with the switch off, the bar is back"
