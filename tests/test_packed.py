"""Packed layers and models: same outputs as the binary model, nothing but bits resident."""

from __future__ import annotations

import pytest
import torch
from helpers import randomize
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import binedu.packed as packed_module
from binedu import (
    BinaryConv2d,
    BinaryEmbedding,
    BinaryLinear,
    BinaryMultiheadAttention,
    BinaryTransformerBlock,
    ImageClassifier,
    LanguageModel,
    pack_bits,
    pack_model,
    unpack_bits,
)
from binedu.packed import (
    PackedConv2d,
    PackedEmbedding,
    PackedLayer,
    PackedLinear,
    dense_matmul,
    lut_matmul,
    packed_matmul,
    unpack_float,
)

TOL = dict(rtol=1e-4, atol=1e-4)




def assert_same_outputs(binary: nn.Module, packed: nn.Module, x: torch.Tensor) -> None:
    with torch.no_grad():
        expected, got = binary(x), packed(x)
    torch.testing.assert_close(got, expected, **TOL)
    if expected.ndim >= 2 and expected.shape[-1] > 1:  # same predictions where the top-2 gap is not a tie
        top2 = expected.topk(2, dim=-1).values
        clear = (top2[..., 0] - top2[..., 1]) > 1e-3
        assert torch.equal(got.argmax(-1)[clear], expected.argmax(-1)[clear])


def assert_only_bits(model: nn.Module) -> None:
    """No parameters at all and every tensor the module holds is uint8 packed bits."""
    assert not list(model.parameters())
    buffers = dict(model.named_buffers())
    assert buffers, "a packed model holds its bits in buffers"
    assert all(b.dtype == torch.uint8 for b in buffers.values()), {n: b.dtype for n, b in buffers.items()}
    for module in model.modules():  # no float tensor hidden in a plain attribute either
        for name, value in vars(module).items():
            if isinstance(value, torch.Tensor):
                assert value.dtype == torch.uint8, f"{type(module).__name__}.{name} is {value.dtype}"


@st.composite
def matmul_cases(draw):
    n_x = draw(st.integers(1, 40))
    n_units = draw(st.integers(1, 24))
    rows = draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**31 - 1))
    chunk = draw(st.sampled_from([1, 7, 64, 1 << 20]))
    g = torch.Generator().manual_seed(seed)
    w = torch.randint(0, 2, (n_x, n_units), generator=g)
    x = torch.randn(rows, n_x, generator=g)
    return x, w, chunk


@settings(max_examples=80, deadline=None)
@given(matmul_cases())
def test_lut_and_dense_kernels_equal_float_matmul(case):
    """Both kernels compute x @ W from the packed bits, for any shape and any chunking."""
    x, w, chunk = case
    bits = pack_bits(w, dim=0)
    expected = x @ w.float()
    torch.testing.assert_close(lut_matmul(x, bits, chunk), expected, **TOL)
    torch.testing.assert_close(dense_matmul(x, bits, chunk), expected, **TOL)


def test_lut_kernel_uses_no_multiplication(monkeypatch):
    """The lookup-table path only adds, gathers and sums: make every float multiply fail."""
    x, w = torch.randn(3, 20), torch.randint(0, 2, (20, 11))
    bits = pack_bits(w, dim=0)
    expected = x @ w.float()

    def forbidden(*args, **kwargs):
        raise AssertionError("multiplication used")

    for name in ("mul", "matmul", "mm", "bmm", "einsum", "addmm"):
        monkeypatch.setattr(torch, name, forbidden)
    monkeypatch.setattr(torch.Tensor, "__mul__", forbidden)
    monkeypatch.setattr(torch.Tensor, "__matmul__", forbidden)
    got = lut_matmul(x, bits)
    monkeypatch.undo()
    torch.testing.assert_close(got, expected, **TOL)


def test_unpack_float_equals_unpack_bits():
    packed = torch.randint(0, 256, (5, 3), dtype=torch.uint8)
    assert torch.equal(unpack_float(packed, 21), unpack_bits(packed, 21).float())


@pytest.mark.parametrize("method", packed_module.METHODS)
def test_packed_matmul_keeps_leading_axes(method):
    x, w = torch.randn(2, 3, 17), torch.randint(0, 2, (17, 9))
    got = packed_matmul(x, pack_bits(w, dim=0), method)
    assert got.shape == (2, 3, 9)
    torch.testing.assert_close(got, x @ w.float(), **TOL)


def test_auto_picks_lut_for_few_rows_and_dense_for_many(monkeypatch):
    """Without the compiled kernel (numba missing: it answers None), ``auto`` picks the
    PyTorch LUT for few rows and the dense product for many."""
    calls = []
    monkeypatch.setattr(packed_module.lut_kernel, "packed_linear", lambda *args: None)
    monkeypatch.setattr(packed_module, "lut_matmul", lambda x, b: calls.append("lut") or torch.zeros(x.shape[0], 4))
    monkeypatch.setattr(packed_module, "dense_matmul", lambda x, b: calls.append("dense") or torch.zeros(x.shape[0], 4))
    bits = torch.zeros(1, 4, dtype=torch.uint8)
    packed_matmul(torch.randn(packed_module.LUT_MAX_ROWS, 8), bits)
    packed_matmul(torch.randn(packed_module.LUT_MAX_ROWS + 1, 8), bits)
    assert calls == ["lut", "dense"]


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="unknown packed method"):
        packed_matmul(torch.randn(1, 8), torch.zeros(1, 2, dtype=torch.uint8), "fast")
    with pytest.raises(ValueError, match="unknown packed method"):
        pack_model(nn.Sequential(BinaryLinear(8, 2)), method="fast")


LAYERS = [
    (lambda: BinaryLinear(13, 11, "gelu"), lambda: torch.randn(2, 5, 13), PackedLinear),
    (lambda: BinaryLinear(16, 24, "relu"), lambda: torch.randn(1, 16), PackedLinear),
    (lambda: BinaryLinear(9, 6, normalize=False), lambda: torch.randn(4, 9), PackedLinear),
    (lambda: BinaryLinear(8, 5, "softmax"), lambda: torch.randn(3, 8), PackedLinear),
    (lambda: BinaryConv2d(3, 5, 3, "relu"), lambda: torch.randn(2, 3, 6, 6), PackedConv2d),
    (lambda: BinaryConv2d(2, 9, 5, norm_mode="chw"), lambda: torch.randn(1, 2, 7, 5), PackedConv2d),
    (lambda: BinaryConv2d(4, 3, 1, normalize=False), lambda: torch.randn(2, 4, 3, 3), PackedConv2d),
    (lambda: BinaryEmbedding(37, 12, 9), lambda: torch.randint(0, 37, (3, 9)), PackedEmbedding),
    (lambda: BinaryEmbedding(5, 7, 4, normalize=False), lambda: torch.randint(0, 5, (2, 3)), PackedEmbedding),
    (lambda: BinaryEmbedding(6, 8, 5, "relu"), lambda: torch.randint(0, 6, (2, 5)), PackedEmbedding),
    (lambda: BinaryMultiheadAttention(16, 4), lambda: torch.randn(2, 6, 16), None),
    (lambda: BinaryTransformerBlock(16, 2, 24), lambda: torch.randn(2, 5, 16), None),
    (lambda: BinaryTransformerBlock(8, 2, leaky_mask=True, normalize=False), lambda: torch.randn(1, 4, 8), None),
]


@pytest.mark.parametrize("make, make_input, kind", LAYERS)
def test_every_layer_type_packs_to_the_same_outputs(make, make_input, kind):
    torch.manual_seed(0)
    layer = randomize(make())
    packed = pack_model(layer)
    if kind is not None:
        assert type(packed) is kind
    assert_only_bits(packed)
    for method in ("lut", "dense"):
        for m in packed.modules():
            if isinstance(m, PackedLinear):
                m.method = method
        assert_same_outputs(layer, packed, make_input())


@pytest.mark.parametrize("make, make_input, kind", [case for case in LAYERS if case[2] is not None])
def test_packed_layer_bits_are_the_binary_parameters(make, make_input, kind):
    layer = randomize(make())
    packed = kind.from_binary(layer)
    expected, got = layer.binary_parameters(), packed.binary_parameters()
    assert expected.keys() == got.keys()
    for name in expected:
        assert torch.equal(got[name], expected[name]), name
    assert packed.num_bits() == sum(p.numel() for p in layer.parameters())


@pytest.mark.parametrize("overrides", [{}, {"normalize": False}, {"leaky_mask": True}])
def test_language_model_packs_to_the_same_logits(overrides):
    model = randomize(LanguageModel.from_config("tiny", **overrides), seed=1)
    packed = pack_model(model)
    assert type(packed) is LanguageModel and packed.config == model.config
    assert_only_bits(packed)
    tokens = torch.randint(0, model.config.vocab_size, (3, 20), generator=torch.Generator().manual_seed(2))
    assert_same_outputs(model, packed, tokens)
    assert_same_outputs(model, packed, tokens[:1, :7])  # one sequence: the lookup-table path in the head


@pytest.mark.parametrize("overrides", [{}, {"normalize": False}, {"norm_mode": "chw", "filter_size": 5}])
def test_image_classifier_packs_to_the_same_logits(overrides):
    model = randomize(ImageClassifier.from_config("tiny", **overrides), seed=3)
    packed = pack_model(model)
    assert type(packed) is ImageClassifier and packed.config == model.config
    assert_only_bits(packed)
    images = torch.randn(6, 1, 8, 8, generator=torch.Generator().manual_seed(4))
    assert_same_outputs(model, packed, images)
    assert_same_outputs(model, packed, images[:1])


def test_user_sequential_with_parameter_free_torch_modules():
    model = randomize(
        nn.Sequential(
            BinaryConv2d(1, 8, 3, "relu"),
            nn.MaxPool2d(2),
            nn.ReLU(),
            nn.Flatten(),
            nn.Dropout(0.3),
            BinaryLinear(8 * 4 * 4, 20, "gelu"),
            nn.Identity(),
            BinaryLinear(20, 3),
        )
    )
    packed = pack_model(model)
    assert isinstance(packed, nn.Sequential) and len(packed) == len(model)
    assert_only_bits(packed)
    assert_same_outputs(model, packed, torch.randn(5, 1, 8, 8))


def test_packing_leaves_the_binary_model_untouched_and_packed_model_is_eval_only():
    model = LanguageModel.from_config("tiny").train()
    before = {n: p.clone() for n, p in model.named_parameters()}
    packed = pack_model(model)
    assert model.training and not packed.training
    assert all(torch.equal(before[n], p) for n, p in model.named_parameters())
    assert isinstance(model.embedding, BinaryEmbedding) and isinstance(packed.embedding, PackedEmbedding)
    assert model.num_parameters() > 0
    assert packed.num_parameters() == 0  # bits live in buffers: see memory_report for the count


def test_packed_models_keep_input_validation():
    lm = pack_model(LanguageModel.from_config("tiny"))
    with pytest.raises(ValueError, match="token id out of range"):
        lm(torch.tensor([[0, 256]]))
    with pytest.raises(ValueError, match="longer than max_len"):
        lm(torch.zeros(1, 65, dtype=torch.long))
    with pytest.raises(ValueError, match="tokens must be an int"):
        lm(torch.zeros(1, 3))
    image = pack_model(ImageClassifier.from_config("tiny"))
    with pytest.raises(ValueError, match="images must have shape"):
        image(torch.randn(2, 3, 8, 8))
    with pytest.raises(ValueError, match="in the last axis"):
        PackedLinear(8, 4)(torch.randn(2, 7))
    with pytest.raises(ValueError, match="expects \\(batch, 3"):
        PackedConv2d(3, 4)(torch.randn(2, 2, 5, 5))


def test_float_models_and_float_layers_are_refused():
    with pytest.raises(ValueError, match="binary=False"):
        pack_model(LanguageModel.from_config("tiny", binary=False))
    with pytest.raises(ValueError, match="binary=False"):
        pack_model(ImageClassifier.from_config("tiny", binary=False))
    with pytest.raises(ValueError, match="cannot pack 1: BinaryLinear .*binary=False"):
        pack_model(nn.Sequential(BinaryLinear(4, 4), BinaryLinear(4, 2, binary=False)))


def test_modules_with_float_parameters_are_refused_by_name():
    with pytest.raises(ValueError, match="cannot pack 1 \\(Linear\\).*\\['weight', 'bias'\\]"):
        pack_model(nn.Sequential(BinaryLinear(4, 4), nn.Linear(4, 2)))
    with pytest.raises(ValueError, match="cannot pack 0 \\(BatchNorm1d\\)"):
        pack_model(nn.Sequential(nn.BatchNorm1d(4), BinaryLinear(4, 2)))
    with pytest.raises(ValueError, match="learnable normalization"):
        pack_model(nn.Sequential(BinaryLinear(4, 2, affine=True)))


def test_packed_layers_can_be_built_empty_and_filled_from_bits():
    layer = randomize(BinaryLinear(12, 10))
    empty = PackedLinear(12, 10)
    assert isinstance(empty, PackedLayer) and empty.weight_bits.shape == (2, 10) and empty.bias_bits.shape == (2,)
    empty.load_state_dict(PackedLinear.from_binary(layer).state_dict())
    assert_same_outputs(layer, empty.eval(), torch.randn(3, 12))


def test_conv_chunks_give_the_same_result(monkeypatch):
    layer = randomize(BinaryConv2d(3, 7, 3, "relu"))
    x = torch.randn(2, 3, 5, 5)
    whole = pack_model(layer)(x)
    monkeypatch.setattr(packed_module, "CHUNK_ELEMENTS", 27 * 2)  # two output channels per chunk
    torch.testing.assert_close(pack_model(layer)(x), whole, **TOL)


def test_input_features_must_fit_the_packed_weights():
    with pytest.raises(ValueError, match="17 input features do not fit"):
        packed_matmul(torch.randn(1, 17), torch.zeros(2, 3, dtype=torch.uint8))
