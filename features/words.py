"""Words as the copy measure counts them: lower case, letters with an inner apostrophe, no digits.

The copy guard (features/grounding/decoding.py) and the copy rate (training/stylometry.py) must see
the same words, or the guard lets through what the measure calls a copy ("Church, whose" and
"Church whose" are one word sequence but two token sequences)."""

import re

WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
LETTERS = re.compile(r"[a-z]+")  # searched for: the first run of letters in a token's text


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())
