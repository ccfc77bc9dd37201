"""binedu: binary normalized neural networks, from scratch (Cabral et al., 2025).

Every parameter is a single bit (Eq. 1), trained through float latent weights with the
straight-through estimator (Alg. 1) and a parameter-free normalization after each layer.
"""

from .attention import BinaryMultiheadAttention
from .bits import pack_bits, unpack_bits
from .checkpoint import CheckpointError, load_packed, save_packed
from .config import ImageConfig, LanguageConfig
from .conv import BinaryConv2d
from .data import CharTokenizer, WordPieceTokenizer, image_data, text_data
from .embedding import BinaryEmbedding
from .generate import generate
from .history import History
from .image_model import ImageClassifier
from .kv_cache import KVCache
from .language_model import LanguageModel
from .linear import BinaryLinear
from .memory import memory_report
from .metrics import evaluate
from .model import count_parameters
from .normalize import Normalize, normalize
from .packed import pack_model
from .quantize import quantize, quantize_ste
from .train import fit
from .train_callbacks import Callback
from .transformer import BinaryTransformerBlock

__version__ = "0.2.0"  # the only place the version is written: pyproject.toml reads it

__all__ = [
    # Eq. 1, Alg. 1 and Normalize
    "quantize",
    "quantize_ste",
    "normalize",
    "Normalize",
    # the binary normalized layers (Alg. 1-6)
    "BinaryLinear",
    "BinaryConv2d",
    "BinaryEmbedding",
    "BinaryMultiheadAttention",
    "BinaryTransformerBlock",
    # the paper's models (Alg. 7, 8)
    "ImageClassifier",
    "LanguageModel",
    "ImageConfig",
    "LanguageConfig",
    "KVCache",
    "count_parameters",
    # 1 bit for real
    "pack_bits",
    "unpack_bits",
    "pack_model",
    "save_packed",
    "load_packed",
    "CheckpointError",
    "memory_report",
    # data, training, evaluation
    "image_data",
    "text_data",
    "CharTokenizer",
    "WordPieceTokenizer",
    "fit",
    "Callback",
    "evaluate",
    "generate",
    "History",
]
