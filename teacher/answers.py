"""The answer key: one model answer per exercise, as the source a student would paste into
the exercise cell (it uses only what the notebook imported), and the value answers.

``ANSWERS[id] = (name, source)``: executing ``source`` defines ``name``, the object the
notebook's ``check(id, name)`` hands in."""

from __future__ import annotations

ANSWERS: dict[str, tuple[str, str]] = {
    "01.memory_bytes": ("memory_bytes", '''
def memory_bytes(num_params: int, bits: int) -> int:
    return -(-num_params * bits // 8)
'''),
    "01.training_gb": ("training_gb", '''
training_gb = LanguageModel.on_meta("paper-small").num_parameters() * 16 / 1e9
'''),
    "01.fits_in_24gb": ("billions_in_24gb", '''
billions_in_24gb = 24e9 * 8 / 1e9
'''),
    "02.quantize": ("my_quantize", '''
def my_quantize(p: torch.Tensor) -> torch.Tensor:
    return (p > p.mean()).float()
'''),
    "02.ste": ("my_ste", '''
def my_ste(w: torch.Tensor) -> torch.Tensor:
    return w + ((w > w.mean()).float() - w).detach()
'''),
    "02.preactivation": ("preactivation", '''
def preactivation(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return x @ (w > w.mean()).float().T + (b > b.mean()).float()
'''),
    "02.build_flip_log": ("train_with_flip_log", '''
def train_with_flip_log(model, x, y, steps, lr):
    def bits():
        return {name: [(p.detach() > p.detach().mean()) for p in (m.weight, m.bias)]
                for name, m in model.named_modules() if hasattr(m, "weight") and hasattr(m, "bias")}
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    log = []
    for _ in range(steps):
        before = bits()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        after = bits()
        log.append({name: sum(int((a != b).sum()) for a, b in zip(before[name], after[name]))
                          / sum(a.numel() for a in before[name]) for name in before})
    return log
'''),
    "03.normalize": ("my_normalize", '''
def my_normalize(z: torch.Tensor) -> torch.Tensor:
    mean = z.mean(-1, keepdim=True)
    var = z.var(-1, unbiased=False, keepdim=True)
    return (z - mean) / torch.sqrt(var + 1e-5)
'''),
    "03.sum_std": ("sum_std", '''
def sum_std(n: int) -> float:
    return math.sqrt(n * 0.5)
'''),
    "03.relu_sum_mean": ("relu_sum_mean", '''
def relu_sum_mean(n: int, weights: str) -> float:
    mean_w = 0.5 if weights == "01" else 0.0
    return n * mean_w / math.sqrt(2 * math.pi)
'''),
    "03.capstone": ("MyBinaryLinear", '''
def my_ste(p):
    return p + ((p > p.mean()).float() - p).detach()

def my_normalize(z):
    mean = z.mean(-1, keepdim=True)
    return (z - mean) / torch.sqrt(z.var(-1, unbiased=False, keepdim=True) + 1e-5)

class MyBinaryLinear(nn.Module):
    def __init__(self, in_features, out_features, activation=None):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.xavier_uniform_(self.weight)
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.activation = activation

    def forward(self, x):
        a = my_normalize(nn.functional.linear(x, my_ste(self.weight), my_ste(self.bias)))
        return torch.relu(a) if self.activation == "relu" else a
'''),
    "04.bncvl_parameters": ("bncvl_parameters", '''
def bncvl_parameters(in_channels: int, out_channels: int, filter_size: int) -> int:
    return filter_size * filter_size * in_channels * out_channels + out_channels
'''),
    "04.pooled_size": ("size_after_pools", '''
def size_after_pools(image_size: int, num_pools: int) -> int:
    for _ in range(num_pools):
        image_size //= 2
    return image_size
'''),
    "04.alg7_params": ("alg7_params", '''
def _bncvl(c_in, c_out, f):
    return f * f * c_in * c_out + c_out
channels = [1, 32, 32, 64, 64, 64, 64, 128, 128, 256, 256]
alg7_params = sum(_bncvl(a, b, 3) for a, b in zip(channels, channels[1:]))
alg7_params += (256 * 256 + 256) * 2 + 256 * 10 + 10
'''),
    "04.loss_floor": ("loss_floor", '''
def loss_floor(num_classes: int) -> float:
    c = num_classes
    right, wrong = math.sqrt(c - 1), -1 / math.sqrt(c - 1)
    return -(right - math.log(math.exp(right) + (c - 1) * math.exp(wrong)))
'''),
    "04.build_bncvl": ("MyBNCVL", '''
class MyBNCVL(torch.nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size=3, activation=None):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        torch.nn.init.xavier_uniform_(self.weight)
        self.bias = torch.nn.Parameter(torch.zeros(out_channels))
        self.activation = activation

    def forward(self, x):
        def ste(p):
            return p + ((p > p.mean()).float() - p).detach()
        z = torch.nn.functional.conv2d(x, ste(self.weight), ste(self.bias), padding="same")
        mean = z.mean(1, keepdim=True)
        a = (z - mean) / torch.sqrt(z.var(1, unbiased=False, keepdim=True) + 1e-5)
        return torch.relu(a) if self.activation == "relu" else a
'''),
    "05.causal_mask": ("causal_mask", '''
def causal_mask(seq_len: int) -> torch.Tensor:
    i = torch.arange(seq_len)
    return i[None, :] > i[:, None]
'''),
    "05.leaky_weight": ("leaky_weight", '''
leaky_weight = 7 / 8
'''),
    "05.perplexity": ("perplexity_without_padding", '''
def perplexity_without_padding(logits, targets, pad_id):
    nll = -torch.log_softmax(logits, -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return float(torch.exp(nll[targets != pad_id].mean()))
'''),
    "06.pack_byte": ("pack_byte", '''
def pack_byte(bits) -> int:
    return sum(bit * 2**j for j, bit in enumerate(bits))
'''),
    "06.unpack_byte": ("unpack_byte", '''
def unpack_byte(byte: int) -> tuple:
    bits = []
    for _ in range(8):
        byte, bit = divmod(byte, 2)
        bits.append(bit)
    return tuple(bits)
'''),
    "06.packed_matrix_bytes": ("packed_matrix_bytes", '''
def packed_matrix_bytes(rows: int, cols: int) -> int:
    return rows * -(-cols // 8)
'''),
    "06.build_packed_inference": ("packed_forward", '''
def packed_forward(layers, x):
    out = np.asarray(x, dtype=np.float32)
    for layer in layers:
        shifts = np.arange(8, dtype=np.uint8)
        w = (layer["weight"][:, None, :] >> shifts[None, :, None]) & 1          # (G, 8, out)
        w = w.reshape(-1, layer["out_features"])[: layer["in_features"]].astype(np.float32)
        b = ((layer["bias"][:, None] >> shifts[None, :]) & 1).reshape(-1)[: layer["out_features"]]
        z = out @ w + b.astype(np.float32)
        z = (z - z.mean(-1, keepdims=True)) / np.sqrt(z.var(-1, keepdims=True) + 1e-5)
        out = np.maximum(z, 0) if layer["activation"] == "relu" else z
    return out
'''),
    "07.lut_entry": ("lut_entry", '''
def lut_entry(x, k):
    total = torch.zeros((), dtype=x.dtype)
    for j in range(8):
        if (k >> j) & 1:
            total = total + x[j]
    return total
'''),
    "07.lut_dot": ("lut_dot", '''
def lut_dot(x, packed_row):
    total = torch.zeros((), dtype=x.dtype)
    for group, byte in zip(x.reshape(-1, 8), packed_row):
        for j in range(8):
            if (int(byte) >> j) & 1:
                total = total + group[j]
    return total
'''),
    "07.lut_table_bytes": ("lut_bytes", '''
lut_bytes = 2048 // 8 * 256 * 4
'''),
    "08.bnfcl_parameters": ("bnfcl_parameters", '''
def bnfcl_parameters(n_x: int, n_units: int) -> int:
    return n_units * (n_x + 1)
'''),
    "08.build_blm_parameters": ("blm_parameters", '''
def blm_parameters(vocab_size, max_len, embed_dim, num_blocks, mlp_units, ff_dim=None):
    def bnfcl(n_x, n_units):
        return n_x * n_units + n_units
    ff = ff_dim or 2 * embed_dim
    embedding = (vocab_size + 1) * embed_dim + (max_len + 1) * embed_dim
    block = 4 * bnfcl(embed_dim, embed_dim) + bnfcl(embed_dim, ff) + bnfcl(ff, embed_dim)
    head, width = 0, embed_dim
    for units in [*mlp_units, vocab_size]:
        head, width = head + bnfcl(width, units), units
    return embedding + num_blocks * block + head
'''),
    "08.mixed_precision_mb": ("mixed_mb", '''
_large = LanguageModel.on_meta("paper-large")
_kept = sum(p.numel() for m in (_large.embedding, _large.head[-1]) for p in m.parameters())
mixed_mb = (4 * _kept + -(-(_large.num_parameters() - _kept) // 8)) / 1e6
'''),
    "09.largest_image_gap": ("largest_image_gap", '''
def largest_image_gap(sweep):
    done = [p for p in sweep["points"] if p["task"] == "images" and len(p["seeds"]) >= sweep.get("seeds", 1)]
    gaps = max(done, key=lambda p: p["params"])["gaps"]["accuracy points"]
    return sum(gaps) / len(gaps)
'''),
    "09.gap_slope": ("gap_slope", '''
def gap_slope(params, gaps):
    xs = [math.log10(p) for p in params]
    mx, my = sum(xs) / len(xs), sum(gaps) / len(gaps)
    return sum((x - mx) * (y - my) for x, y in zip(xs, gaps)) / sum((x - mx) ** 2 for x in xs)
'''),
}


def notebook_imports(notebook: str) -> str:
    """The import statements of a course notebook (``"02"``): the top-level ``import`` and
    ``from ... import`` lines of its code cells, in order (what a pasted answer may use)."""
    import json
    from pathlib import Path

    path = next((Path(__file__).resolve().parent.parent / "notebooks").glob(f"{notebook}_*.ipynb"))
    lines = []
    for cell in json.loads(path.read_text())["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"]).splitlines()
        i = 0
        while i < len(source):
            line = source[i]
            if line.startswith(("import ", "from ")) and "google.colab" not in line:
                block = [line]
                while block[-1].rstrip().endswith(("(", ",")) or ("(" in "".join(block) and ")" not in "".join(block)):
                    i += 1
                    block.append(source[i])
                lines += block
            i += 1
    return "\n".join(lines)


def model_answer(exercise_id: str) -> object:
    """The model answer of ``exercise_id``, pasted into a fresh namespace that holds only
    what its notebook imported."""
    name, source = ANSWERS[exercise_id]
    namespace: dict[str, object] = {}
    exec(notebook_imports(exercise_id[:2]), namespace)  # noqa: S102 - the course's own notebooks
    exec(source, namespace)  # noqa: S102 - the kit's own answer
    return namespace[name]


def solved(nb: object) -> object:
    """A released notebook with every answer cell filled in with its model answer (the
    teacher's solution notebook): the answer's code, then the cell's own ``check`` call on it."""
    import re

    for cell in getattr(nb, "cells", []):
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id not in ANSWERS:
            continue
        name, source = ANSWERS[grade_id]
        handed = re.search(r'check\("[\w.]+",\s*(\w+)', cell.source)
        if handed is None:
            raise ValueError(f"the cell of {grade_id} does not call check")
        alias = "" if handed.group(1) == name else f"{handed.group(1)} = {name}\n"
        cell.source = f"{source.strip()}\n{alias}\n{cell.source[handed.start():]}"
    return nb
