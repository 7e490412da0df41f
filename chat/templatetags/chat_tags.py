"""Template helpers for drafts: a draft's text with its unsupported specifics marked."""

from django import template
from django.utils.html import format_html

register = template.Library()


@register.filter
def marked_specifics(alternative: dict) -> str:
    """The alternative's text, escaped, each number or name the notes do not hold in a <mark>."""
    text, out, at = alternative.get("text", ""), [], 0
    for item in sorted(alternative.get("specifics", []), key=lambda s: s["start"]):
        start, end = item["start"], item["start"] + len(item["text"])
        if start < at or text[start:end] != item["text"]:
            continue  # overlapping or stale offsets: leave that one unmarked rather than garble the text
        kind = "number" if item["kind"] == "number" else "name"
        mark = '{}<mark class="specific" title="This {} is not in your notes: check it">{}</mark>'
        out.append(format_html(mark, text[at:start], kind, item["text"]))
        at = end
    out.append(text[at:])
    return format_html("{}" * len(out), *out)  # each piece escaped, the marks kept
