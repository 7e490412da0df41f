"""clean_text on hostile input: linear time on anything a user may upload, and links still stripped.

A document may hold 500,000 characters. The Markdown link pattern used to be quadratic:
20,000 "[" took 4.8 s (27 s on a busy machine), 100,000 would take minutes and 500,000
hours. Each example below is one call on a large input built from the characters the
patterns care about, under a per-call deadline that a quadratic pattern misses by far.
"""

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.cleaning import clean_text

SIZE = 100_000  # characters per adversarial document
PER_CALL = timedelta(seconds=3)  # generous for a shared 2-core machine; measured ~0.1 s
SYNTAX = "[]()!<>/a \n`"
HOSTILE_UNITS = ["[", "![", "](", "[a](", "![a](", "[a]", "(", ")", "<a", "</a", "<", "[a](b", "[a](b(c"]

adversarial = settings(deadline=PER_CALL, max_examples=20, database=None, suppress_health_check=[HealthCheck.too_slow])


@adversarial
@given(unit=st.lists(st.sampled_from(HOSTILE_UNITS), min_size=1, max_size=4).map("".join))
def test_repeated_syntax_fragments_clean_in_linear_time(unit):
    clean_text(unit * (SIZE // len(unit) + 1))


@adversarial
@given(pattern=st.text(alphabet=SYNTAX, min_size=1, max_size=40))
def test_any_mix_of_markup_characters_cleans_in_linear_time(pattern):
    clean_text(pattern * (SIZE // len(pattern) + 1))


@adversarial
@given(opener=st.sampled_from(["[", "![", "<a", "[a](", "[a](("]), filler=st.sampled_from(["a", " ", "(", "]"]))
def test_one_opener_before_a_long_unclosed_run_cleans_in_linear_time(opener, filler):
    clean_text((opener + filler * 1000) * (SIZE // 1000))


words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=12)
labels = st.lists(words, min_size=1, max_size=4).map(" ".join)
targets = st.builds(
    lambda host, path, paren: f"https://{host}.example/{path}" + (f"_({paren})" if paren else ""),
    words,
    words,
    st.one_of(st.none(), words),
)


@settings(max_examples=100, database=None)
@given(before=words, label=labels, target=targets, after=words, image=st.booleans())
def test_links_and_images_keep_their_text_and_lose_their_target(before, label, target, after, image):
    link = f"{'!' if image else ''}[{label}]({target})"

    cleaned = clean_text(f"{before} {link} {after}")

    assert cleaned == f"{before} {label} {after}"


@settings(max_examples=100, database=None)
@given(text=st.text(alphabet="abc []()!<>\n", max_size=300))
def test_cleaning_never_adds_characters(text):
    """Whatever the markup, cleaning only removes: every output character comes from the input, in order."""
    cleaned = clean_text(text)

    position = 0
    for character in cleaned:
        found = text.find(character, position)
        assert found >= 0 or character == " ", (text, cleaned)
        position = found + 1 if found >= 0 else position
