"""chunk_text with the real embedding tokenizer: no chunk past the model's window, nothing lost."""

import itertools
import random
import re

import pytest

from features import embeddings
from features.chunking import chunk_text, split_sentences

WORDS = (
    "hive bees winter frame honey roof linden queen colony swarm smoke wax brood comb nectar pollen "
    "varroa mite feeder entrance condensation apiary drone worker forage spring autumn sugar syrup"
).split()


@pytest.fixture(scope="module")
def window() -> int:
    return embeddings.max_tokens()


def chunk(text: str) -> list[str]:
    return chunk_text(text, embeddings.count_tokens, max_tokens=embeddings.max_tokens())


def assert_fits(chunks: list[str], window: int):
    sizes = [embeddings.count_tokens(c) for c in chunks]
    assert chunks and max(sizes) <= window, f"largest chunk has {max(sizes)} tokens"
    assert all(c.strip() for c in chunks), "empty chunk"


def sentences(count: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return [
        f"Sentence {i} says the {' '.join(rng.choices(WORDS, k=rng.randint(4, 30)))} matters." for i in range(count)
    ]


def test_the_window_is_the_models_256_tokens(window):
    assert window == 256
    assert embeddings.count_tokens("bees") == 3  # [CLS] bees [SEP]: counts include special tokens


def test_a_short_text_is_one_chunk():
    assert chunk("# Bees\n\nI keep two hives.") == ["# Bees\nI keep two hives."]


def test_empty_text_has_no_chunks():
    assert chunk("") == [] and chunk("\n\n  \n") == []


def test_every_sentence_of_a_long_text_appears_in_some_chunk(window):
    parts = sentences(400)
    paragraphs = [" ".join(parts[i : i + 5]) for i in range(0, len(parts), 5)]
    text = "# Notes\n\n" + "\n\n".join(paragraphs)

    chunks = chunk(text)

    assert_fits(chunks, window)
    assert len(chunks) > 10
    missing = [s for s in parts if not any(s in c for c in chunks)]
    assert missing == []


def test_chunks_keep_the_order_of_the_text():
    parts = sentences(120)
    chunks = chunk("\n\n".join(parts))

    firsts = [int(re.match(r"Sentence (\d+)", c).group(1)) for c in chunks]
    assert firsts == sorted(firsts)


def test_a_heading_stays_with_the_paragraph_under_it():
    chunks = chunk("# Winter\n\nThe first winter I lost one colony to damp, not cold.")

    assert chunks == ["# Winter\nThe first winter I lost one colony to damp, not cold."]


def test_a_5000_word_single_sentence_is_split_within_the_window(window):
    sentence = " ".join(random.Random(2).choices(WORDS, k=5000)) + "."

    chunks = chunk(sentence)

    assert_fits(chunks, window)
    assert " ".join(chunks).split() == sentence.split()  # split by words, none lost or repeated


def test_a_long_code_block_is_split_within_the_window(window):
    lines = [f"    value_{i} = compute(value_{i - 1}, factor={i} * 3.5)  # step {i}" for i in range(1, 400)]
    text = "Setup:\n\n```python\ndef run():\n" + "\n".join(lines) + "\n```\n\nThat is all."

    chunks = chunk(text)

    assert_fits(chunks, window)
    joined = " ".join(chunks)
    assert all(f"# step {i}" in joined for i in range(1, 400))


def test_a_short_code_block_is_kept_whole_with_its_layout():
    code = "```python\ndef total(items):\n    return sum(items)\n```"

    assert chunk(f"Intro sentence.\n\n{code}") == [f"Intro sentence.\n{code}"]


def test_a_huge_document_stays_within_the_window(window):
    parts = sentences(3000, seed=3)
    text = "\n\n".join(" ".join(parts[i : i + 6]) for i in range(0, len(parts), 6))

    chunks = chunk(text)

    assert_fits(chunks, window)
    assert len(chunks) > 100


def test_a_long_word_without_spaces_is_split_within_the_window(window):
    url = "https://example.com/" + "/".join(f"segment{i}" for i in range(800))

    chunks = chunk(f"See {url} for the full list.")

    assert_fits(chunks, window)
    assert "".join(chunks).replace(" ", "") == f"See{url}forthefulllist."


def test_text_without_spaces_or_full_stops_is_split_within_the_window(window):
    text = "我在屋顶上养了两箱蜜蜂它们飞过车流去公园找椴树" * 60  # Chinese: no spaces, no ASCII stops

    chunks = chunk(text)

    assert_fits(chunks, window)
    assert "".join(chunks) == text


def test_consecutive_chunks_overlap_by_one_sentence():
    parts = sentences(60, seed=4)

    chunks = chunk(" ".join(parts))

    for before, after in itertools.pairwise(chunks):
        assert after.split("\n")[0] == before.split("\n")[-1]


def test_split_sentences_keeps_headings_and_code_blocks_whole():
    text = "# A heading. With a stop.\n\nOne. Two!\n\n```\nx = 1. y = 2.\n```"

    assert split_sentences(text) == ["# A heading. With a stop.", "One.", "Two!", "```\nx = 1. y = 2.\n```"]


@pytest.mark.django_db
def test_stored_chunks_of_an_upload_without_spaces_fit_the_window(owner, window):
    from features.models import Chunk
    from tests.conftest import add_markdown_source

    add_markdown_source(owner, "bees-zh.md", "# 蜜蜂\n\n" + "我在屋顶上养了两箱蜜蜂它们飞过车流去公园找椴树" * 80)

    counts = list(Chunk.objects.filter(owner=owner).values_list("token_count", flat=True))
    assert len(counts) > 1 and max(counts) <= window
