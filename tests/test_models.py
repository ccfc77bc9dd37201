"""The paper's two models (Alg. 7 and 8): sizes, configuration, and the laws they obey."""

import pytest
import torch
import torch.nn.functional as F
from helpers import randomize
from hypothesis import given, settings
from hypothesis import strategies as st

from binedu import ImageClassifier, ImageConfig, LanguageConfig, LanguageModel, count_parameters

torch.manual_seed(0)


def tiny_lm(**kw) -> LanguageModel:
    return LanguageModel.from_config("tiny", vocab_size=16, max_len=16, embed_dim=32, mlp_units=(64,), **kw)


def tiny_image(**kw) -> ImageClassifier:
    return ImageClassifier.from_config("tiny", **kw)




# ---- sizes and configuration -------------------------------------------------------

@pytest.mark.parametrize(
    "name, stated",
    [
        ("paper-3x3", 5_132_165),  # Table 2's model: the counts the paper states
        ("paper-5x5", 13_505_925),
        ("paper-3x3-as-printed", 1_403_653),  # Alg. 7 exactly as printed
        ("paper-5x5-as-printed", 3_617_029),
    ],
)
def test_paper_image_models_count(name, stated):
    assert ImageClassifier.on_meta(name).num_parameters() == stated


def test_paper_image_model_is_the_wider_reading_of_alg7():
    wide, printed = ImageClassifier.configs["paper-3x3"], ImageClassifier.configs["paper-3x3-as-printed"]
    assert wide.widths == ((32, 32), (64, 64), (128, 128), (256, 256), (512, 512)) and wide.dense_units == (512, 256)
    assert printed.widths == ((32, 32), (64, 64), (64, 64), (128, 128), (256, 256)) and printed.dense_units == (256, 256)
    assert wide.replace(widths=printed.widths, dense_units=printed.dense_units) == printed


@pytest.mark.parametrize(
    "name, millions, exact", [("paper-small", 154.4, 154_406_714), ("paper-large", 332.8, 332_855_098)]
)
def test_paper_language_models_match_table3(name, millions, exact):
    model = LanguageModel.from_config(name)
    assert model.num_parameters() == exact
    assert model.num_parameters() // 100_000 / 10 == millions  # Table 3 truncates to 0.1 M
    assert model.vocab_size == 30_522 and model.max_len == 256
    assert next(model.parameters()).device.type == "cpu"


def test_configuration_is_readable():
    model = ImageClassifier.from_config("paper-5x5")
    assert (model.in_channels, model.image_size, model.num_classes, model.filter_size) == (3, 256, 101, 5)
    assert isinstance(model.config, ImageConfig)
    lm = LanguageModel.from_config("paper-large")
    assert (lm.embed_dim, lm.num_heads, lm.num_blocks, lm.mlp_units) == (1024, 16, 16, (8192, 4096))
    assert LanguageConfig.from_dict(lm.config.to_dict()) == lm.config


def test_overrides_and_custom_arguments():
    model = ImageClassifier(in_channels=1, num_classes=7, image_size=16, filter_size=5, widths=((4,), (8,)), dense_units=(8,))
    assert model(torch.randn(2, 1, 16, 16)).shape == (2, 7)
    assert LanguageModel.from_config("tiny", vocab_size=40).vocab_size == 40


def test_float_counterparts():
    binary, floating = ImageClassifier.from_config("tiny"), ImageClassifier.from_config("tiny", binary=False)
    dropouts = [m.p for m in floating.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropouts == [0.2] and not any(isinstance(m, torch.nn.Dropout) for m in binary.modules())
    assert [m.p for m in ImageClassifier.from_config("paper-3x3", binary=False).modules() if isinstance(m, torch.nn.Dropout)] == [0.4, 0.3]
    # same architecture plus learnable scale/shift in the normalizations
    assert count_parameters(floating) > count_parameters(binary)
    assert not any(isinstance(m, torch.nn.Dropout) for m in LanguageModel.from_config("tiny", binary=False).modules())


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: ImageClassifier.from_config("paper-7x7"), "unknown image config 'paper-7x7'"),
        (lambda: LanguageModel.from_config("gpt2"), "unknown language config 'gpt2'"),
        (lambda: LanguageModel.from_config("tiny", embed_dim=30, num_heads=4), "not divisible"),
        (lambda: ImageClassifier.from_config("tiny", wdiths=(1,)), "unknown ImageConfig fields"),
        (lambda: ImageClassifier(image_size=8, widths=((4,),) * 5), "too small"),
        (lambda: LanguageModel.from_config("tiny", vocab_size=0), "positive integer"),
    ],
)
def test_bad_configuration_names_the_problem(build, message):
    with pytest.raises(ValueError, match=message):
        build()


@pytest.mark.parametrize(
    "model, bad, message",
    [
        (tiny_image(), torch.randn(2, 3, 8, 8), r"shape \(batch, 1, 8, 8\)"),
        (tiny_image(), torch.randn(2, 1, 16, 16), r"shape \(batch, 1, 8, 8\)"),
        (tiny_image(), torch.zeros(2, 1, 8, 8, dtype=torch.long), "floating-point"),
        (tiny_lm(), torch.zeros(1, 17, dtype=torch.long), "longer than max_len=16"),
        (tiny_lm(), torch.tensor([[3, 16]]), "out of range"),
        (tiny_lm(), torch.tensor([[-1, 2]]), "out of range"),
        (tiny_lm(), torch.zeros(1, 4), "integer tensor"),
    ],
)
def test_wrong_model_input_names_the_problem(model, bad, message):
    with pytest.raises(ValueError, match=message):
        model(bad)


# ---- laws ---------------------------------------------------------------------------

MODELS = {
    "image-binary": (tiny_image, lambda: torch.randn(3, 1, 8, 8)),
    "image-float": (lambda: tiny_image(binary=False), lambda: torch.randn(3, 1, 8, 8)),
    "lm-binary": (tiny_lm, lambda: torch.randint(0, 16, (3, 10))),
    "lm-float": (lambda: tiny_lm(binary=False), lambda: torch.randint(0, 16, (3, 10))),
}


@pytest.mark.parametrize("name", MODELS)
def test_gradients_reach_every_latent_parameter(name):
    make, inputs = MODELS[name]
    model = randomize(make())
    out = model(inputs())
    F.cross_entropy(out.reshape(-1, out.shape[-1]), torch.randint(0, out.shape[-1], (out[..., 0].numel(),))).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"no gradient reached {missing}"


@pytest.mark.parametrize("name", ["image-binary", "lm-binary"])
@given(scale=st.floats(0.01, 100), shift=st.floats(-10, 10))
@settings(max_examples=10)
def test_eval_output_depends_only_on_the_bits(name, scale, shift):
    make, inputs = MODELS[name]
    torch.manual_seed(1)
    model = randomize(make()).eval()
    x = inputs()
    before = model(x)
    bits = {n: p > p.double().mean() for n, p in model.named_parameters()}
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(scale).add_(shift)  # every entry moves with its tensor's mean: no bit changes
    assert all(torch.equal(p > p.double().mean(), bits[n]) for n, p in model.named_parameters())
    assert torch.equal(model(x), before)


@pytest.mark.parametrize("name", MODELS)
@given(data=st.data())
@settings(max_examples=8)
def test_no_statistics_cross_examples(name, data):
    make, inputs = MODELS[name]
    torch.manual_seed(2)
    model = randomize(make()).eval()
    x = inputs()
    i = data.draw(st.integers(0, len(x) - 1))
    alone = model(x[i : i + 1])
    together = model(x)
    torch.testing.assert_close(together[i : i + 1], alone, atol=1e-5, rtol=1e-5)


@given(t=st.integers(0, 9), seed=st.integers(0, 1000))
@settings(max_examples=15)
def test_language_model_is_causal(t, seed):
    torch.manual_seed(seed)
    model = randomize(tiny_lm(), seed)
    tokens = torch.randint(0, 16, (2, 10))
    changed = tokens.clone()
    changed[:, t + 1 :] = torch.randint(0, 16, changed[:, t + 1 :].shape)
    torch.testing.assert_close(model(changed)[:, : t + 1], model(tokens)[:, : t + 1], atol=1e-5, rtol=1e-5)


def test_paper_leaky_mask_breaks_causality():
    # Alg. 6 line 17 fills future scores with -1e-10 (about 0): the future leaks in
    torch.manual_seed(0)
    model = randomize(tiny_lm(leaky_mask=True)).eval()
    tokens = torch.randint(0, 16, (2, 10))
    changed = tokens.clone()
    changed[:, 5:] = (changed[:, 5:] + 1) % 16
    assert not torch.allclose(model(changed)[:, :5], model(tokens)[:, :5], atol=1e-3)


# ---- the paper's central claim at small scale ------------------------------------------

def quadrant_images(n=512):
    """4 classes: which quadrant of an 8x8 grey image is bright, under noise."""
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 4, (n,), generator=g)
    x = torch.randn(n, 1, 8, 8, generator=g) * 0.5
    for i, label in enumerate(y.tolist()):
        r, c = divmod(label, 2)
        x[i, 0, 4 * r : 4 * r + 4, 4 * c : 4 * c + 4] += 2.0
    return x, y


def arithmetic_sequences(n=256, length=17, vocab=16):
    """Each sequence counts up by 1 or 2 modulo the vocabulary from a random start."""
    g = torch.Generator().manual_seed(0)
    start = torch.randint(0, vocab, (n, 1), generator=g)
    step = torch.randint(1, 3, (n, 1), generator=g)
    return (start + step * torch.arange(length)) % vocab


def train(model, batches, lr, steps=60):
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for s in range(steps):
        loss = batches(model, s)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_tiny_image_model_learns_and_needs_normalization():
    x, y = quadrant_images()

    def batches(model, s):
        i = (s * 64) % len(x)
        return F.cross_entropy(model(x[i : i + 64]), y[i : i + 64])

    results = {}
    for normalize in (True, False):
        torch.manual_seed(0)
        model = tiny_image(num_classes=4, normalize=normalize)
        losses = train(model, batches, lr=3e-3)
        with torch.no_grad():
            acc = (model.eval()(x).argmax(1) == y).float().mean().item()
        results[normalize] = (losses, acc)
    losses, acc = results[True]
    assert sum(losses[-10:]) / 10 < 0.5 * losses[0]  # loss falls clearly
    assert acc > 0.9
    assert results[False][1] < acc - 0.2  # without Normalize: measurably worse


def test_tiny_language_model_learns_and_needs_normalization():
    seqs = arithmetic_sequences()

    def batches(model, s):
        i = (s * 32) % len(seqs)
        b = seqs[i : i + 32]
        logits = model(b[:, :-1])
        return F.cross_entropy(logits.reshape(-1, 16), b[:, 1:].reshape(-1))

    final = {}
    for normalize in (True, False):
        torch.manual_seed(0)
        losses = train(tiny_lm(normalize=normalize), batches, lr=1e-2)
        final[normalize] = (losses[0], sum(losses[-10:]) / 10)
    first, last = final[True]
    assert last < 0.6 * first  # from ~log(16) towards the 1-2 bits of uncertainty left
    assert final[False][1] > 2 * last


def test_on_meta_builds_the_structure_without_weights():
    model = LanguageModel.on_meta("paper-large", binary=False)
    assert all(p.device.type == "meta" for p in model.parameters())
    assert model.num_parameters() > 332_855_098  # plus the float model's learnable norms
    assert ImageClassifier.on_meta("paper-3x3").num_parameters() == 5_132_165
