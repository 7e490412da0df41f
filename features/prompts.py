"""The prompt templates, one per mode: training formats samples with them, chat fills them.

- ask (`build_messages`): a question answered from fenced notes;
- write (`build_write_messages`): a brief (a post, a paragraph, a reply…) written in the owner's
  voice, with a few notes as background, not as text to copy.

Using the same template in both places avoids the book's train/serve mismatch
(trained on Alpaca, served with a free-form prompt). Retrieved text is fenced and
labelled as quotes: crawled pages are data, never instructions, and a page cannot
close the fence early.
"""

# Short on purpose: a 135M model read the longer "say so briefly when they do not" as a cue
# to apologise ("I'm sorry for any confusion…") in 7 of 8 demo answers.
SYSTEM_PROMPT = (
    "You are {name}. Answer the question in one or two sentences, in the first person, "
    "using the notes from your own writing."
)
FENCE_OPEN, FENCE_CLOSE = "<notes>", "</notes>"


def _fence_safe(text: str) -> str:
    return text.replace(FENCE_CLOSE, "</ notes>").replace(FENCE_OPEN, "< notes>")


def build_messages(twin_name: str, question: str, context: list[str], history: list[dict] = ()) -> list[dict]:
    """Chat messages for a question, with retrieved passages (possibly none) as fenced notes.

    history: earlier turns ({"role": "user"|"assistant", "content"}), oldest first, already
    cut to the token budget. Notes are dash lines, not numbered: the model copied "[1]" into
    its answers.
    """
    if context:
        notes = "\n".join(f"- {_fence_safe(passage)}" for passage in context)
        user = f"Notes from my writing:\n{FENCE_OPEN}\n{notes}\n{FENCE_CLOSE}\n\nQuestion: {question}"
    else:
        user = question
    return [
        {"role": "system", "content": SYSTEM_PROMPT.format(name=twin_name)},
        *({"role": turn["role"], "content": turn["content"]} for turn in history),
        {"role": "user", "content": user},
    ]


def render_prompt(tokenizer, messages: list[dict]) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


WRITE_SYSTEM_PROMPT = "You are {name}. Write in your own voice, in the first person, as you always write."
# What each format asks for, in the words the brief's sentence uses.
FORMATS = {
    "post": "a short social media post",
    "paragraph": "a paragraph",
    "email": "an email",
    "reply": "a reply",
    "thread": "a short thread of numbered posts",
    "free": "a piece",
}
LENGTHS = {"short": 60, "medium": 120, "long": 220}  # words


def build_write_messages(twin_name: str, brief: str, form: str = "paragraph", words: int = 120, notes=()) -> list:
    """Chat messages for a writing brief. The notes are background from the owner's writing (fenced:
    crawled text is data); the instruction says to write new text, and the copy guard enforces it."""
    what = FORMATS.get(form, FORMATS["free"])
    ask = f"Write {what} of about {words} words. Brief: {brief.strip()}"
    if notes:
        background = "\n".join(f"- {_fence_safe(note)}" for note in notes)
        fenced = f"{FENCE_OPEN}\n{background}\n{FENCE_CLOSE}"
        ask = f"Background from my writing (write new sentences; do not copy it):\n{fenced}\n\n{ask}"
    return [
        {"role": "system", "content": WRITE_SYSTEM_PROMPT.format(name=twin_name)},
        {"role": "user", "content": ask},
    ]


def record_messages(twin_name: str, record: dict, context=None) -> list[dict]:
    """A dataset record's prompt in its mode's template: a "style" record (one of the author's
    passages) is a writing brief answered by that passage, a "grounded" one a question answered
    from notes. Training, the preference builder and the gate all format records here."""
    notes = record.get("context") or [] if context is None else context
    if record.get("kind") == "style":
        words = record.get("words") or max(40, round(len(record["answer"].split()), -1))
        return build_write_messages(twin_name, record["instruction"], record.get("form", "paragraph"), words, notes)
    return build_messages(twin_name, record["instruction"], notes)
