"""Helpers shared by the test files."""

import torch
from torch import nn


def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Standard-normal latents everywhere (biases included, which start at zero), so that
    every bit pattern is exercised; returns the model in eval mode."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    return model.eval()


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    """The two models hold bit-identical state (same names, same values)."""
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
