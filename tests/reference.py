"""Direct, slow reference computations of the paper's algorithms (loops, float64).

They spell each algorithm out element by element so the layers can be checked against
something written independently of their vectorised code.
"""

import math

import torch


def bits(p: torch.Tensor) -> torch.Tensor:
    """Eq. 1, written out: compare each entry with the tensor's mean."""
    flat = [float(v) for v in p.detach().double().flatten()]
    mean = math.fsum(flat) / len(flat)
    return torch.tensor([1.0 if v > mean else 0.0 for v in flat], dtype=torch.float64).reshape(p.shape)


def normalize_vec(z: list[float], eps: float = 1e-5) -> list[float]:
    n = len(z)
    mean = sum(z) / n
    var = sum((v - mean) ** 2 for v in z) / n
    return [(v - mean) / math.sqrt(var + eps) for v in z]


ACT = {
    "linear": lambda v: v,
    "relu": lambda v: max(v, 0.0),
    "gelu": lambda v: 0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0))),
}


def bnfcl(x: torch.Tensor, weight, bias, activation="linear") -> torch.Tensor:
    """Alg. 2 for a (n, in) batch: z_j = sum_i W_b[j, i] x_i + b_b[j]; Normalize; activation."""
    wb, bb = bits(weight), bits(bias)
    out = []
    for row in x.double().reshape(-1, x.shape[-1]):
        z = [sum(float(wb[j, i]) * float(row[i]) for i in range(len(row))) + float(bb[j]) for j in range(len(bb))]
        out.append([ACT[activation](v) for v in normalize_vec(z)])
    return torch.tensor(out, dtype=torch.float64).reshape(*x.shape[:-1], len(bb))


def bncvl(x: torch.Tensor, weight, bias, activation="linear") -> torch.Tensor:
    """Alg. 3 / Eq. 2: same-padded stride-1 convolution with 0/1 kernel and bias, then
    Normalize over the channels at each pixel, then the activation."""
    wb, bb = bits(weight), bits(bias)
    n, cin, h, w = x.shape
    cout, _, k, _ = weight.shape
    pad = (k - 1) // 2
    x = x.double()
    out = torch.zeros(n, cout, h, w, dtype=torch.float64)
    for b in range(n):
        for r in range(h):
            for c in range(w):
                z = []
                for o in range(cout):
                    s = float(bb[o])
                    for i in range(cin):
                        for dr in range(k):
                            for dc in range(k):
                                rr, cc = r + dr - pad, c + dc - pad
                                if 0 <= rr < h and 0 <= cc < w:
                                    s += float(wb[o, i, dr, dc]) * float(x[b, i, rr, cc])
                    z.append(s)
                for o, v in enumerate(normalize_vec(z)):
                    out[b, o, r, c] = ACT[activation](v)
    return out


def bembl(tokens: torch.Tensor, layer, activation="linear") -> torch.Tensor:
    """Alg. 4 with real one-hot vectors: BNFCL(onehot(token)) + BNFCL(onehot(position))."""
    vocab, max_len = layer.weight.shape[0], layer.position_weight.shape[0]
    onehot_tok = torch.nn.functional.one_hot(tokens, vocab).double()
    onehot_pos = torch.nn.functional.one_hot(torch.arange(tokens.shape[1]), max_len).double()
    tok = bnfcl(onehot_tok, layer.weight.T, layer.bias, activation)
    pos = bnfcl(onehot_pos, layer.position_weight.T, layer.position_bias, activation)
    return tok + pos


def batl(x: torch.Tensor, layer) -> torch.Tensor:
    """Alg. 6 with loops over heads and positions; position t attends to s <= t only."""
    q = bnfcl(x, layer.query.weight, layer.query.bias)
    k = bnfcl(x, layer.key.weight, layer.key.bias)
    v = bnfcl(x, layer.value.weight, layer.value.bias)
    n, t, d = x.shape
    h = layer.num_heads
    hd = d // h
    merged = torch.zeros(n, t, d, dtype=torch.float64)
    for b in range(n):
        for head in range(h):
            sl = slice(head * hd, (head + 1) * hd)
            for i in range(t):
                scores = [float(q[b, i, sl] @ k[b, j, sl]) / math.sqrt(hd) for j in range(i + 1)]
                m = max(scores)
                e = [math.exp(s - m) for s in scores]
                weights = [v_ / sum(e) for v_ in e]
                merged[b, i, sl] = sum(w * v[b, j, sl] for j, w in enumerate(weights))
    return bnfcl(merged, layer.out.weight, layer.out.bias)


def btfb(x: torch.Tensor, block) -> torch.Tensor:
    """Alg. 5, post-norm."""

    def norm(t):
        rows = [normalize_vec(row.tolist()) for row in t.reshape(-1, t.shape[-1])]
        return torch.tensor(rows, dtype=torch.float64).reshape(t.shape)

    x = x.double()
    h = norm(x + batl(x, block.attention))
    f = bnfcl(h, block.ff1.weight, block.ff1.bias, "gelu")
    f = bnfcl(f, block.ff2.weight, block.ff2.bias)
    return norm(h + f)
