"""Public-domain author corpora for the fidelity measurements, built offline from Debian packages.

No model hub or book site is reachable here, so the texts come from Debian:
- `dict-devil`: Ambrose Bierce, *The Devil's Dictionary* (1881-1906), about 60k words of
  short satirical essays; one document per initial letter.
- `bible-kjv` + `bible-kjv-text`: the King James Version, read through its `bible` command.
  Three authors of essay-like prose: Paul (the epistles Romans to Philemon, about 32k words),
  Luke (Luke and Acts, about 38k words) and the wisdom books (Proverbs and Ecclesiastes,
  about 21k words); one document per chapter group.

`apt-get install dict-devil bible-kjv bible-kjv-text` (the bench says so when they are missing).
The demo corpus is never used for these figures.
"""

import gzip
import re
import shutil
import subprocess
from pathlib import Path

DEVIL = Path("/usr/share/dictd/devil.dict.dz")
PACKAGES = "dict-devil bible-kjv bible-kjv-text"
# (abbreviation the `bible` command reads, chapters)
PAUL = [
    ("Rom", 16),
    ("1Cor", 16),
    ("2Cor", 13),
    ("Gal", 6),
    ("Eph", 6),
    ("Phil", 4),
    ("Col", 4),
    ("1Thess", 5),
    ("2Thess", 3),
    ("1Tim", 6),
    ("2Tim", 4),
    ("Titus", 3),
    ("Phmn", 1),
]
LUKE = [("Luke", 24), ("Acts", 28)]
WISDOM = [("Prov", 31), ("Eccl", 12)]
VERSE = re.compile(r"^\S+?(\d+):(\d+) (.*)$")


class CorpusMissing(RuntimeError):
    pass


def _require():
    if not DEVIL.exists() or shutil.which("bible") is None:
        raise CorpusMissing(f"the author corpora need Debian packages: apt-get install {PACKAGES}")


def bierce() -> list[tuple[str, str]]:
    """(title, text) per initial letter of The Devil's Dictionary, entries as paragraphs."""
    _require()
    raw = gzip.decompress(DEVIL.read_bytes()).decode("latin-1")
    body = raw[raw.index("ABASEMENT, n.") :]
    entries = [e.strip() for e in re.split(r"\n\s*\n(?=[A-Z][A-Z' -]+[,.])", body) if e.strip()]
    letters: dict[str, list[str]] = {}
    for entry in entries:
        paragraph = re.sub(r"[ \t]+", " ", re.sub(r"(?<!\n)\n(?!\n)", " ", entry)).strip()
        letters.setdefault(entry[0], []).append(paragraph)
    return [(f"The Devil's Dictionary: {letter}", "\n\n".join(items)) for letter, items in sorted(letters.items())]


def _chapter(book: str, chapter: int) -> str:
    out = subprocess.run(["bible", "-f", f"{book}{chapter}:1-200"], capture_output=True, text=True, check=True).stdout
    verses = [m.group(3) for m in map(VERSE.match, out.splitlines()) if m]
    # Five verses to a paragraph: the features pipeline cuts extracts at paragraph breaks.
    return "\n\n".join(" ".join(verses[i : i + 5]) for i in range(0, len(verses), 5))


def kjv(books: list[tuple[str, int]], chapters_per_document: int) -> list[tuple[str, str]]:
    _require()
    documents = []
    for book, chapters in books:
        for first in range(1, chapters + 1, chapters_per_document):
            last = min(chapters, first + chapters_per_document - 1)
            text = "\n\n".join(_chapter(book, c) for c in range(first, last + 1))
            documents.append((f"{book} {first}-{last}", text))
    return documents


AUTHORS = {
    "bierce": lambda: bierce(),
    "paul": lambda: kjv(PAUL, 3),
    "luke": lambda: kjv(LUKE, 3),
    "wisdom": lambda: kjv(WISDOM, 3),
}


def corpus(author: str) -> list[tuple[int, str, str]]:
    """(document_id, title, text), ids stable per author so the held-out split is reproducible."""
    return [(i + 1, title, text) for i, (title, text) in enumerate(AUTHORS[author]())]


if __name__ == "__main__":
    for name in AUTHORS:
        docs = corpus(name)
        print(f"{name}: {len(docs)} documents, {sum(len(t.split()) for _, _, t in docs)} words")
