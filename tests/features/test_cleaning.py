"""clean_text: keep what carries meaning (paragraphs, code layout), drop what is noise."""

from features.cleaning import clean_text


def test_paragraph_breaks_are_kept_and_runs_of_blank_lines_collapse():
    text = "First paragraph.\n\n\n\n\nSecond paragraph.\r\n\r\nThird paragraph."

    assert clean_text(text) == "First paragraph.\n\nSecond paragraph.\n\nThird paragraph."


def test_runs_of_spaces_and_tabs_in_prose_become_one_space():
    assert clean_text("Too   many \t spaces\u00a0\u00a0here.   ") == "Too many spaces here."


def test_punctuation_is_kept():
    text = "Really? Yes: it's 3.5% (or so) — and “quoted”!"

    assert clean_text(text) == text


def test_code_fences_in_an_article_keep_their_indentation():
    text = "Here is the loop:\n\n```python\ndef total(items):\n    for item in items:\n        yield item\n```"

    assert clean_text(text) == text


def test_code_documents_keep_their_indentation():
    code = "class Hive:\n    def __init__(self):\n        self.frames = []\n\n\tdef tabbed(self):\n\t\treturn 1"

    assert clean_text(code, category="code") == code


def test_code_documents_keep_markdown_like_syntax():
    code = "links = [x](y)\nhtml = '<div>'"

    assert clean_text(code, category="code") == code


def test_control_characters_are_dropped_but_newlines_and_tabs_in_code_stay():
    text = "Bell\x07 and\x00 null\x1b[31m red\x7f.\n\n```\n\tindented\n```"

    assert clean_text(text) == "Bell and null[31m red.\n\n```\n\tindented\n```"


def test_zero_width_characters_and_soft_hyphens_are_dropped():
    assert clean_text("zero\u200bwidth\u200c joi\u200dner\u2060 soft\u00adhyphen \ufeffbom") == (
        "zerowidth joiner softhyphen bom"
    )


def test_markdown_links_keep_only_their_text():
    text = "Read [my post](https://example.com/post_(2024)) and [the docs](/docs?a=1 'Title')."

    assert clean_text(text) == "Read my post and the docs."


def test_markdown_images_keep_only_their_alt_text():
    assert (
        clean_text("A hive: ![two hives on a roof](/img/hives.jpg) in July.") == "A hive: two hives on a roof in July."
    )


def test_leftover_html_tags_are_removed():
    assert clean_text("Some <b>bold</b> and <a href='/x'>linked</a> text.<br/>") == "Some bold and linked text."


def test_compatibility_characters_are_normalised():
    assert clean_text("ﬁne ＡＢＣ") == "fine ABC"


def test_headings_stay_markdown_headings():
    assert clean_text("# Title\n\n## Section\n\nBody.") == "# Title\n\n## Section\n\nBody."


def test_whitespace_only_text_cleans_to_nothing():
    assert clean_text(" \n\n\t \u200b \n") == ""
