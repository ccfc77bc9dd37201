"""Each binary layer against a direct, slow reference of its algorithm, plus its
contract (shapes, errors, bits used in train and eval, gradients to every latent)."""

import pytest
import reference as ref
import torch
from helpers import randomize

from binedu import (
    BinaryConv2d,
    BinaryEmbedding,
    BinaryLinear,
    BinaryMultiheadAttention,
    BinaryTransformerBlock,
)

torch.manual_seed(0)
TOL = dict(atol=2e-4, rtol=1e-4)




@pytest.mark.parametrize("activation", ["linear", "relu", "gelu"])
def test_bnfcl_matches_alg2(activation):
    layer = randomize(BinaryLinear(7, 5, activation)).eval()
    x = torch.randn(3, 7)
    torch.testing.assert_close(layer(x).double(), ref.bnfcl(x, layer.weight, layer.bias, activation), **TOL)


def test_bnfcl_sequence_input_is_per_token():
    layer = randomize(BinaryLinear(6, 4))
    x = torch.randn(2, 3, 6)
    torch.testing.assert_close(layer(x).double(), ref.bnfcl(x, layer.weight, layer.bias), **TOL)


@pytest.mark.parametrize("k", [3, 5])
def test_bncvl_matches_alg3(k):
    layer = randomize(BinaryConv2d(2, 4, k, "relu")).eval()
    x = torch.randn(2, 2, 5, 6)
    torch.testing.assert_close(layer(x).double(), ref.bncvl(x, layer.weight, layer.bias, "relu"), **TOL)


@pytest.mark.parametrize("activation", ["linear", "relu"])
def test_bembl_matches_alg4_one_hot_product(activation):
    layer = randomize(BinaryEmbedding(11, 8, max_len=6, activation=activation))
    tokens = torch.randint(0, 11, (3, 5))
    torch.testing.assert_close(layer(tokens).double(), ref.bembl(tokens, layer, activation), **TOL)


def test_batl_matches_alg6():
    layer = randomize(BinaryMultiheadAttention(8, 2))
    x = torch.randn(2, 5, 8)
    torch.testing.assert_close(layer(x).double(), ref.batl(x, layer), **TOL)


def test_btfb_matches_alg5():
    block = randomize(BinaryTransformerBlock(8, 2))
    assert block.ff_dim == 16  # ff_dim = 2 * emb_dim, as in the paper
    x = torch.randn(2, 4, 8)
    torch.testing.assert_close(block(x).double(), ref.btfb(x, block), **TOL)


LAYERS = {
    "linear": (lambda **kw: BinaryLinear(6, 4, **kw), lambda: torch.randn(3, 6)),
    "conv": (lambda **kw: BinaryConv2d(2, 4, 3, **kw), lambda: torch.randn(2, 2, 5, 5)),
    "embedding": (lambda **kw: BinaryEmbedding(9, 8, 6, **kw), lambda: torch.randint(0, 9, (2, 6))),
    "attention": (lambda **kw: BinaryMultiheadAttention(8, 2, **kw), lambda: torch.randn(2, 5, 8)),
    "block": (lambda **kw: BinaryTransformerBlock(8, 2, **kw), lambda: torch.randn(2, 5, 8)),
}


@pytest.mark.parametrize("name", LAYERS)
def test_gradients_reach_every_latent_parameter(name):
    make, inputs = LAYERS[name]
    layer = randomize(make())
    (layer(inputs()) * torch.randn(1)).square().sum().backward()
    for pname, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient reached {pname}"


@pytest.mark.parametrize("name", LAYERS)
def test_bits_are_used_in_train_and_eval(name):
    make, inputs = LAYERS[name]
    layer = randomize(make())
    x = inputs()
    train_out = layer.train()(x)
    eval_out = layer.eval()(x)
    assert torch.equal(train_out, eval_out)
    float_layer = make(binary=False)
    float_layer.load_state_dict(layer.state_dict(), strict=False)
    assert not torch.allclose(float_layer(x), eval_out)  # the float path does differ


@pytest.mark.parametrize("name", LAYERS)
def test_binary_layers_are_parameter_free_apart_from_latents(name):
    make, _ = LAYERS[name]
    binary, floating = make(), make(binary=False)
    latent = {n for n, _ in binary.named_parameters()}
    assert all(n.endswith(("weight", "bias")) for n in latent)
    # the float counterpart adds the learnable scale/shift of its normalizations
    assert latent < {n for n, _ in floating.named_parameters()}


def test_binary_parameters_are_the_bits():
    layer = randomize(BinaryLinear(5, 3))
    b = layer.binary_parameters()
    assert set(b) == {"weight", "bias"}
    assert set(b["weight"].unique().tolist()) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="binary=False"):
        BinaryLinear(5, 3, binary=False).binary_parameters()


@pytest.mark.parametrize(
    "layer, bad, message",
    [
        (BinaryLinear(6, 4), torch.randn(3, 5), "6 features"),
        (BinaryConv2d(3, 4), torch.randn(2, 2, 5, 5), r"\(batch, 3, height, width\)"),
        (BinaryConv2d(3, 4), torch.randn(3, 5, 5), r"\(batch, 3, height, width\)"),
        (BinaryEmbedding(9, 8, 4), torch.randint(0, 9, (1, 5)), "longer than max_len=4"),
        (BinaryEmbedding(9, 8, 4), torch.tensor([[1, 9]]), "out of range"),
        (BinaryEmbedding(9, 8, 4), torch.tensor([[1.0, 2.0]]), "integer tensor"),
        (BinaryEmbedding(9, 8, 4), torch.tensor([1, 2]), r"\(batch, seq\)"),
        (BinaryMultiheadAttention(8, 2), torch.randn(2, 8), r"\(batch, seq, 8\)"),
    ],
)
def test_wrong_input_names_the_problem(layer, bad, message):
    with pytest.raises(ValueError, match=message):
        layer(bad)


def test_bad_construction():
    with pytest.raises(ValueError, match="not divisible"):
        BinaryMultiheadAttention(10, 3)
    with pytest.raises(ValueError, match="unknown activation"):
        BinaryLinear(3, 3, "tanhh")
