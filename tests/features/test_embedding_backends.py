"""The ONNX Runtime backend: the same embeddings as PyTorch, chosen by setting, loaded once;
chunks of another model are re-embedded by `manage.py reembed`."""

import numpy as np
import pytest
from django.core.management import call_command

from features import embeddings
from features.models import Chunk
from tests.conftest import SAMPLE_MARKDOWN, add_markdown_source

TEXTS = [
    "I keep two hives on the flat roof of our building.",
    "def hive_weight(frames):\n    return sum(frames) * 0.8",
    "The first winter I lost one colony to damp, not cold. " * 20,
    "🐝 #beekeeping @anna",
]


@pytest.fixture(scope="module")
def exported():
    """The packaged model's ONNX export (prepare_models makes it; idempotent, slow only the first time)."""
    return embeddings.export_onnx(log=lambda _: None)


@pytest.fixture
def use_backend(monkeypatch):
    def use(name):
        monkeypatch.setenv("TWIN_EMBEDDING_BACKEND", name)
        embeddings.get_model.cache_clear()
        embeddings.get_short_text_model.cache_clear()
        embeddings._query_embedding.cache_clear()  # a query another test embedded is not embedded again

    yield use
    embeddings.get_model.cache_clear()
    embeddings.get_short_text_model.cache_clear()


def test_the_export_matches_pytorch_on_the_demo_writing(exported):
    assert exported["fp32_min_cosine"] >= 0.99
    assert exported["variant"] in ("fp32", "int8")
    if exported["variant"] == "int8":
        assert exported["int8_min_cosine"] >= 0.99  # int8 only where the quality holds


def test_onnx_embeddings_equal_pytorchs(exported, use_backend):
    use_backend("torch")
    reference = embeddings.embed(TEXTS)
    use_backend("onnx")
    got = embeddings.embed(TEXTS)

    assert got.shape == reference.shape == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert (got * reference).sum(axis=1).min() >= 0.99
    assert embeddings.max_tokens() == 256 and embeddings.count_tokens("bees") == 3


def test_auto_embeds_chunks_on_pytorch_and_short_texts_on_onnx_each_loaded_once(exported, use_backend, monkeypatch):
    """ONNX Runtime is faster than PyTorch on sentences and slower on chunk-long texts (see
    features/embeddings.py), and its fp32 export gives the same vectors, so "auto" uses both."""
    from features import onnx_embeddings

    calls, loads = [], []
    real_init, real_encode = onnx_embeddings.OnnxEncoder.__init__, onnx_embeddings.OnnxEncoder.encode
    monkeypatch.setattr(
        onnx_embeddings.OnnxEncoder, "__init__", lambda self, *a, **k: loads.append(1) or real_init(self, *a, **k)
    )
    monkeypatch.setattr(
        onnx_embeddings.OnnxEncoder,
        "encode",
        lambda self, texts, **k: calls.append(len(texts)) or real_encode(self, texts, **k),
    )
    use_backend("torch")
    reference = embeddings.embed(TEXTS[:3])
    use_backend("auto")

    assert embeddings.backend() == "torch" and embeddings.model_id() == "all-MiniLM-L6-v2"
    chunk = embeddings.embed([TEXTS[2]])  # ~1,100 characters: PyTorch
    assert calls == []
    sentences = embeddings.embed(TEXTS[:2])
    embeddings.embed_query("honey")
    embeddings.count_tokens("bees")
    assert calls == [2, 1] and loads == [1]  # both short batches on ONNX, loaded once
    got = np.vstack([sentences, chunk])
    assert (got * reference).sum(axis=1).min() >= 0.9999


def test_onnx_runs_everything_when_chosen(exported, use_backend, monkeypatch):
    from features import onnx_embeddings

    loads = []
    real_init = onnx_embeddings.OnnxEncoder.__init__
    monkeypatch.setattr(
        onnx_embeddings.OnnxEncoder, "__init__", lambda self, *a, **k: loads.append(1) or real_init(self, *a, **k)
    )
    use_backend("onnx")

    assert embeddings.backend() == "onnx"
    embeddings.embed(TEXTS)
    embeddings.embed_query("honey")
    embeddings.count_tokens("bees")

    assert loads == [1]


def test_a_bad_backend_setting_is_a_clear_error(use_backend):
    use_backend("tpu")

    with pytest.raises(RuntimeError, match="TWIN_EMBEDDING_BACKEND must be auto, onnx or torch"):
        embeddings.embed(TEXTS)


@pytest.mark.django_db
def test_reembed_rewrites_only_chunks_of_another_model(owner, other, capsys):
    add_markdown_source(owner, "bees.md", SAMPLE_MARKDOWN)
    add_markdown_source(other, "more.md", "# More\n\nVarroa mites need counting every month.")
    mine = Chunk.objects.for_user(owner)
    before = {c.pk: c.embedding_model for c in mine}
    mine.update(embedding_model="old-model")
    untouched = set(Chunk.objects.for_user(other).values_list("pk", flat=True))

    call_command("reembed")

    assert set(mine.values_list("embedding_model", flat=True)) == {embeddings.model_id()}
    assert set(mine.values_list("pk", flat=True)).isdisjoint(before)  # rewritten
    assert set(Chunk.objects.for_user(other).values_list("pk", flat=True)) == untouched
    assert "re-embedded 1 documents" in capsys.readouterr().out
