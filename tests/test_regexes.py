"""Every module-level regex of the apps runs in linear time on hostile text.

The patterns run on user text (uploads of up to 500,000 characters, questions, answers) on
the shared worker, where one quadratic pattern stalls every twin's jobs: the hardening review
fed them 40 KB inputs, and six took over a second (HEADING 0.8 s at 8 KB, URL_TAIL 3.8 s,
DISTANCE and DURATION 10 s at 8 KB of "1,"). Each pattern found in the apps' modules is run
(finditer: every start position, as search and sub try them) over 200 KB inputs built from
the repetitions that make backtracking engines re-read text, in a child process that is
killed when it hangs, so a regression fails the suite instead of blocking it.

The rewrites of the six must match as before: the old patterns are kept here as the reference
and compared on short texts made of the characters each one cares about.
"""

import importlib
import multiprocessing
import re
import time
from pathlib import Path

import pytest
from django.conf import settings
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from features.chunking import HEADING
from features.cleaning import URL_TAIL
from features.grounding.evidence import BYLINE, DISTANCE, DURATION

APPS = ("accounts", "ingestion", "features", "training", "chat", "core")
SIZE = 200_000  # characters per hostile input
# A benchmark-style check with a generous budget: the slowest linear pattern reads 200 KB in
# about 0.3 s of CPU, and a quadratic one takes minutes. CPU time of the child, not wall time,
# so that a busy shared machine does not fail a linear pattern.
BUDGET_S = 1.0
HANG_S = 10.0  # wall-clock seconds per input: past this the child is killed and the pattern fails

# Repeated units that make a backtracking engine try the rest of the text from every start.
UNITS = [
    " ",
    "\t\n",
    "\n",
    "1,",
    "1.",
    "1 ",
    "http://",
    "# a #",
    "a",
    "A",
    "a ",
    "Word word, ",
    "a.",
    "a-",
    "((((",
    "[a](",
    "<a",
    "@",
    "'",
    "\u00a0",
]
SPECIFIC = [
    "# a" + " #" * (SIZE // 2) + "x",  # HEADING
    "http://" * (SIZE // 7),  # URL_TAIL
    " " * SIZE + "x",  # BYLINE
    "by Ann" + " " * SIZE + "x",  # BYLINE
    "\t\n" * (SIZE // 2) + "x",  # BYLINE
    "1," * (SIZE // 2),  # DISTANCE, DURATION
]
INPUTS = [unit * (SIZE // len(unit)) + "!" for unit in UNITS] + SPECIFIC


def app_patterns() -> dict[str, re.Pattern]:
    """'module.NAME' -> pattern, for every re.Pattern bound at module level in the apps."""
    found, seen = {}, set()
    base = Path(settings.BASE_DIR)
    for app in APPS:
        # Every .py file, not pkgutil's walk, which skips folders without __init__.py (features/grounding).
        for path in sorted((base / app).rglob("*.py")):
            parts = path.relative_to(base).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            module = importlib.import_module(name)
            for attribute, value in vars(module).items():
                if isinstance(value, re.Pattern) and id(value) not in seen:
                    seen.add(id(value))
                    found[f"{name}.{attribute}"] = value
    return found


PATTERNS = app_patterns()


def _time_each(pattern: re.Pattern, connection) -> None:
    for text in INPUTS:
        started = time.process_time()
        for _ in pattern.finditer(text):
            pass
        connection.send(time.process_time() - started)


def test_the_known_patterns_are_found():
    found = {id(pattern) for pattern in PATTERNS.values()}
    assert {id(HEADING), id(URL_TAIL), id(BYLINE), id(DISTANCE), id(DURATION)} <= found
    assert len(PATTERNS) >= 30


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_pattern_is_linear_on_hostile_input(name):
    # fork: the child gets the compiled pattern as it is, and only runs the regex engine.
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_time_each, args=(PATTERNS[name], sender), daemon=True)
    child.start()
    slow = []
    try:
        for text in INPUTS:
            if not receiver.poll(HANG_S):
                slow.append((f"over {HANG_S:.0f} s, stopped", text[:24]))
                break
            elapsed = receiver.recv()
            if elapsed > BUDGET_S:
                slow.append((f"{elapsed:.2f} s", text[:24]))
    finally:
        child.kill()
        child.join()
    assert not slow, f"{name} ({PATTERNS[name].pattern!r}) is slow on 200 KB of: {slow}"


# --- the rewritten patterns match as the old ones did ---------------------------------------

OLD_NUMBER = (
    r"(\d[\d,.]*"
    r"|a|an|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty)"
)
OLD_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
OLD_URL_TAIL = re.compile(r"(https?://[^\s?#]+)[?#]\S*")
OLD_BYLINE = re.compile(r"\s*([Bb]y|[Ww]ritten by)\s+[A-Z][\w.'-]*(\s+[A-Z][\w.'-]*){0,3}\s*$")
OLD_DISTANCE = re.compile(
    OLD_NUMBER + r"\s?(km|kilomet\w*|miles?|metres?|meters?|m|yards?|feet|foot|ft|inch\w*|cm|mm)\b", re.IGNORECASE
)
OLD_DURATION = re.compile(OLD_NUMBER + r"[\s-]?(seconds?|minutes?|hours?|days?|nights?|weeks?|months?|years?)\b", re.I)


def texts_of(*pieces):
    return st.lists(st.sampled_from(pieces), max_size=14).map("".join)


@hypothesis_settings(max_examples=500, database=None)
@given(text=texts_of("#", "##", " ", "\t", "\n", "a", "x", "Title", "\u00a0"))
def test_heading_finds_the_same_headings_and_titles(text):
    old = [(m.span(), m.groups()) for m in OLD_HEADING.finditer(text)]
    assert [(m.span(), m.groups()) for m in HEADING.finditer(text)] == old


@hypothesis_settings(max_examples=500, database=None)
@given(text=texts_of("http://", "https://", "h", "a.com", "/", "?", "#", "=", " ", "\n", "(", "s"))
def test_url_tail_drops_the_same_query_strings(text):
    assert URL_TAIL.sub(lambda m: m.group(1), text) == OLD_URL_TAIL.sub(lambda m: m.group(1), text)


@hypothesis_settings(max_examples=500, database=None)
@given(text=texts_of("By", "by", "Written by", "written by", " ", "\t", "Ann", "Lee", "lee", ".", "'", "-", "x"))
def test_byline_recognises_the_same_lines(text):
    assert bool(BYLINE.match(text)) == bool(OLD_BYLINE.match(text))
    assert bool(BYLINE.search(text)) == bool(OLD_BYLINE.search(text))


@hypothesis_settings(max_examples=500, database=None)
@given(text=texts_of("1", "12", ",", ".", " ", "-", "km", "m", "miles", "days", "hours", "a", "an", "two", "x", "s"))
def test_distance_and_duration_find_a_quantity_in_the_same_sentences(text):
    assert bool(DISTANCE.search(text)) == bool(OLD_DISTANCE.search(text))
    assert bool(DURATION.search(text)) == bool(OLD_DURATION.search(text))


def test_the_rewrites_keep_their_answers_on_prose():
    article = "# Winter cycling ##\n\nMy commute is 11 km each way.\n## Gear\nBy Ann Lee\n"
    assert [(m.group(1), m.group(2)) for m in HEADING.finditer(article)] == [("#", "Winter cycling"), ("##", "Gear")]
    assert BYLINE.match("By Ann Lee") and BYLINE.match("  written by J. R. Hartley ") and not BYLINE.match("By then")
    assert DISTANCE.search("My commute is 11 km each way.") and DISTANCE.search("about 1,500.5 metres")
    assert DURATION.search("It rested for 12-hours.") and not DURATION.search("I have 12 bikes.")
    post = "See https://example.com/a?utm_source=x#top and http://b.org/p#f."
    assert URL_TAIL.sub(lambda m: m.group(1), post) == "See https://example.com/a and http://b.org/p"
