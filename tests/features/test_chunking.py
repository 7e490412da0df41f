"""Chunking per category with the real embedding tokenizer: within the window, covering the
text, idempotent (hypothesis), and cut where each kind of text should be cut."""

import itertools
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features import embeddings
from features.chunking import chunk_document, split_sentences
from features.cleaning import clean_text

WORDS = (
    "hive bees winter frame honey roof linden queen colony swarm smoke wax brood comb nectar pollen "
    "varroa mite feeder entrance condensation apiary drone worker forage spring autumn sugar syrup"
).split()
WINDOW = 256


def chunk(text: str, category: str = "article", path: str = ""):
    return chunk_document(
        text, embeddings.token_offsets(text), category=category, max_tokens=embeddings.max_tokens(), path=path
    )


def assert_sound(text: str, pieces):
    """The three properties: within the window, exact slices covering the text, idempotent."""
    for piece in pieces:
        assert piece.text == text[piece.start : piece.end]
        assert embeddings.count_tokens(piece.text) <= WINDOW
        assert piece.token_count == embeddings.count_tokens(piece.text) or piece.token_count <= WINDOW
    covered = set()
    for piece in pieces:
        covered.update(range(piece.start, piece.end))
    assert {i for i, ch in enumerate(text) if not ch.isspace()} <= covered
    assert [p.start for p in pieces] == sorted(p.start for p in pieces)


def sentences(count: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return [
        f"Sentence {i} says the {' '.join(rng.choices(WORDS, k=rng.randint(4, 30)))} matters." for i in range(count)
    ]


# --- properties -----------------------------------------------------------------------

word = st.sampled_from(WORDS)
token = st.one_of(
    word,
    word.map(str.capitalize),
    st.integers(0, 10**9).map(str),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=30, max_size=400),  # long identifiers / no spaces
    st.text(min_size=1, max_size=8),  # any Unicode at all
    st.sampled_from(["蜜蜂在屋顶上", "𝐛𝐨𝐥𝐝", "#hashtag", "@someone", "https://x.org/a?utm=1", "é", "—"]),
)
separator = st.sampled_from([" ", " ", " ", ". ", "! ", "\n", "\n\n", "\n\n## Part\n\n", "\n# Top\n", "\n    ", "\t"])
texts = st.lists(st.tuples(token, separator), max_size=600).map(lambda parts: "".join(a + b for a, b in parts))
PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(text=texts, category=st.sampled_from(["article", "post", "code"]))
def test_chunks_fit_the_window_cover_the_text_and_rerun_identically(text, category):
    pieces = chunk(text, category, path="notes.py" if category == "code" else "")

    assert_sound(text, pieces)
    assert chunk(text, category, path="notes.py" if category == "code" else "") == pieces
    for piece in pieces:  # a chunk chunked again is itself
        assert [p.text for p in chunk(piece.text, category)] == [piece.text]


@PROPERTY
@given(text=texts)
def test_cleaned_text_chunks_soundly_too(text):
    for category in ("article", "post", "code"):
        cleaned = clean_text(text, category=category)
        assert_sound(cleaned, chunk(cleaned, category))


# --- tokenize once ----------------------------------------------------------------------


@pytest.mark.django_db
def test_the_pipeline_tokenizes_each_text_once_for_chunking(owner, monkeypatch):
    from tests.conftest import add_markdown_source

    calls = {"offsets": 0, "count": 0}
    real_offsets = embeddings.token_offsets

    def offsets(text):
        calls["offsets"] += 1
        return real_offsets(text)

    def count(text):
        calls["count"] += 1
        return 0

    monkeypatch.setattr(embeddings, "token_offsets", offsets)
    monkeypatch.setattr(embeddings, "count_tokens", count)
    add_markdown_source(owner, "long.md", "# Notes\n\n" + "\n\n".join(sentences(200)))

    assert calls == {"offsets": 1, "count": 0}
    from features.models import Chunk

    stored = list(Chunk.objects.for_user(owner))
    assert len(stored) > 5
    assert all(c.token_count == real_count(c.text) for c in stored)


def real_count(text):
    with embeddings._lock:
        return len(embeddings.get_model().tokenizer(text)["input_ids"])


# --- articles ---------------------------------------------------------------------------

ARTICLE = """# Keeping bees

## Why a roof

I keep two hives on the flat roof. The bees fly over the traffic.

## The first winter

### Damp

The first winter I lost one colony to damp, not cold.

```python
# not a heading: a comment in code
tilt = 2  # centimetres
```
"""


def test_an_article_is_cut_by_headings_with_the_heading_path_in_metadata():
    pieces = chunk(ARTICLE)

    assert [p.metadata["headings"] for p in pieces] == [
        ["Keeping bees", "Why a roof"],
        ["Keeping bees", "The first winter", "Damp"],
    ]
    assert pieces[0].text.startswith("# Keeping bees\n\n## Why a roof")  # a bare title joins the next section
    assert pieces[1].text.startswith("## The first winter\n\n### Damp")
    assert "# not a heading: a comment in code\ntilt = 2" in pieces[1].text


def test_a_long_section_is_cut_by_paragraphs_then_sentences_with_overlap():
    parts = sentences(80, seed=4)
    text = "# Notes\n\n" + "\n\n".join(" ".join(parts[i : i + 4]) for i in range(0, 80, 4))

    pieces = chunk(text)

    assert len(pieces) > 5 and all(p.metadata["headings"] == ["Notes"] for p in pieces)
    overlaps = sum(any(s in a.text and s in b.text for s in parts) for a, b in itertools.pairwise(pieces))
    assert overlaps >= len(pieces) // 2  # a short sentence carries a thought across most cuts
    firsts = [int(p.text.split("Sentence ")[1].split()[0]) for p in pieces]
    assert firsts == sorted(firsts)


def test_a_code_block_longer_than_the_window_keeps_its_newlines_and_indentation():
    lines = [f"    value_{i} = compute(value_{i - 1}, factor={i} * 3.5)  # step {i}" for i in range(1, 200)]
    text = "Setup:\n\n```python\ndef run():\n" + "\n".join(lines) + "\n```\n\nThat is all."

    pieces = chunk(text)

    assert len(pieces) > 3
    for line in lines:
        assert any(line in p.text for p in pieces), line  # whole lines, indentation and all


# --- code -------------------------------------------------------------------------------

PYTHON = '''"""Hive tools."""

import math

WEIGHT_LIMIT = 40


@cache
def hive_weight(frames):
    """Kilograms."""
    return sum(frames) * 0.8


class Colony:
    def __init__(self, name):
        self.name = name

    def split(self):
        return Colony(self.name + "-b")
'''


def test_python_is_cut_by_functions_and_classes_with_symbols_and_lines():
    pieces = chunk(PYTHON * 1, "code", path="tools/hives.py")

    assert "".join(p.text + "\n" for p in pieces).strip() == PYTHON.strip() or len(pieces) == 1
    everything = [s for p in pieces for s in p.metadata["symbols"]]
    assert everything == ["hive_weight", "Colony"]
    assert all(p.metadata["path"] == "tools/hives.py" for p in pieces)


def test_a_python_class_past_the_window_is_cut_by_methods_keeping_indentation():
    methods = "\n".join(
        f"    def step_{i}(self, value):\n        # stage {i} of the honey harvest\n"
        f"        return value * {i} + self.offset_{i}\n"
        for i in range(60)
    )
    text = f"import os\n\n\nclass Harvest:\n    offset = 1\n\n{methods}"

    pieces = chunk(text, "code", path="harvest.py")

    assert len(pieces) > 3
    assert pieces[0].text.startswith("import os")
    assert any("Harvest.step_0" in p.metadata["symbols"] for p in pieces)
    assert all(p.text.startswith("    def step_") for p in pieces[1:])
    joined = "\n".join(p.text for p in pieces)
    assert all(f"    def step_{i}(self, value):\n        # stage {i}" in joined for i in range(60))
    first, last = pieces[1].metadata["lines"]
    assert text.splitlines()[first - 1].startswith("    def step_") and last > first


def test_other_languages_are_cut_by_blank_line_blocks():
    block = "function f{i}(x) {{\n  if (x > {i}) {{\n    return x * {i};\n  }}\n  return 0;\n}}\n"
    text = "\n".join(block.format(i=i) for i in range(80))

    pieces = chunk(text, "code", path="hives.js")

    assert len(pieces) > 3
    assert all(p.text.startswith("function f") and p.text.endswith("}") for p in pieces)
    assert all(p.metadata == {"path": "hives.js", "symbols": [], "lines": p.metadata["lines"]} for p in pieces)


def test_python_that_does_not_parse_falls_back_to_blocks():
    pieces = chunk("def broken(:\n    pass\n\nx = 1\n", "code", path="broken.py")

    assert [p.text for p in pieces] == ["def broken(:\n    pass\n\nx = 1"]


# --- posts ------------------------------------------------------------------------------


def test_a_short_post_is_one_chunk_with_its_hashtags_and_mentions():
    raw = "Two new queens today 🐝 thanks @anna_b! #beekeeping #UrbanBees https://x.org/q?utm_source=feed&id=3"
    text = clean_text(raw, category="post")

    pieces = chunk(text, "post")

    assert text.endswith("https://x.org/q")  # tracking parameters dropped by cleaning
    assert [p.text for p in pieces] == [text]
    assert pieces[0].metadata == {"hashtags": ["beekeeping", "UrbanBees"], "mentions": ["anna_b"]}


def test_styled_unicode_letters_in_a_post_are_normalised():
    assert clean_text("𝐁𝐞𝐞𝐬 𝘢𝘳𝘦 ｇｒｅａｔ", category="post") == "Bees are great"


def test_a_long_post_is_cut_like_an_article():
    text = " ".join(sentences(60, seed=9))

    pieces = chunk(text, "post")

    assert len(pieces) > 2
    assert_sound(text, pieces)


def test_split_sentences_keeps_headings_and_code_blocks_whole():
    text = "# A heading. With a stop.\n\nOne. Two!\n\n```\nx = 1. y = 2.\n```"

    assert split_sentences(text) == ["# A heading. With a stop.", "One.", "Two!", "```\nx = 1. y = 2.\n```"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I met Dr. Evans at 9 a.m. Monday.", ["I met Dr. Evans at 9 a.m. Monday."]),
        ("We left at 5 p.m. The rain had stopped.", ["We left at 5 p.m.", "The rain had stopped."]),
        (
            "It weighs 2.5 kg, e.g. a bag of flour. Mr. Smith agreed.",
            ["It weighs 2.5 kg, e.g. a bag of flour.", "Mr. Smith agreed."],
        ),
        # A question inside quotes ends the sentence only when the next one starts.
        (
            '"He never left," she said, "so why would his books?" A man came twice.',
            ['"He never left," she said, "so why would his books?"', "A man came twice."],
        ),
        ('It is "why so dear?", usually said kindly. Fine.', ['It is "why so dear?", usually said kindly.', "Fine."]),
        ("He went... Later he came back. Wait... what?", ["He went...", "Later he came back.", "Wait... what?"]),
        ("I checked the cones; they bent where they should.", ["I checked the cones; they bent where they should."]),
        ("A hard-wrapped\nline. And another\none.", ["A hard-wrapped line.", "And another one."]),
    ],
)
def test_split_sentences_cuts_where_a_sentence_ends(text, expected):
    assert split_sentences(text) == expected


def test_a_long_paragraph_is_not_cut_after_an_abbreviation():
    """Chunking cuts a paragraph past the window by the same sentences: never inside "Dr. Evans"."""
    text = " ".join(f"Dr. Evans came at {i} a.m. Monday to check the {WORDS[i % len(WORDS)]} hive." for i in range(40))

    pieces = chunk(text)

    assert len(pieces) > 1
    assert_sound(text, pieces)
    assert all(piece.text.startswith("Dr. Evans") and piece.text.endswith("hive.") for piece in pieces)


def test_empty_text_has_no_chunks():
    assert chunk("") == [] and chunk("\n\n  \n") == [] and chunk("  ", "code") == [] and chunk("", "post") == []
