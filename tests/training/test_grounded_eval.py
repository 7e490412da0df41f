"""The gate's grounding measure: held-out questions answered from notes as chat serves them,
each answer checked against its notes."""

import pytest
from django.urls import reverse
from transformers import AutoModelForCausalLM, AutoTokenizer

from features.embeddings import embed
from features.grounding.config import GroundingConfig
from training import base_models
from training.grounded_eval import GroundedQuestion, grounding_metrics, heldout_questions
from training.models import ModelVersion
from training.samples import DataSplit

pytestmark = pytest.mark.django_db

QUESTIONS = [
    GroundedQuestion(
        "How many daily dumps do you keep?",
        ["I keep 14 daily dumps on a second drive.", "The basil never survives July."],
        "I keep 14 daily dumps on a second drive.",
    ),
    GroundedQuestion(
        "What do you feed Gerald?",
        ["The tomatoes grow against the south wall.", "I feed Gerald rye flour and water at 1:5:5."],
        "I feed Gerald rye flour and water at 1:5:5.",
    ),
]


@pytest.fixture(scope="module")
def tiny():
    path = base_models.resolve("tiny")
    return AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)


def test_steered_answers_state_the_notes_and_score_higher_than_unsteered_ones(tiny, settings):
    """The tiny model is random: what it says about the notes, steering put there (with the suite's
    bonuses, sized for its logits)."""
    model, tokenizer = tiny
    config = GroundingConfig.from_settings()  # the suite's budget (12 tokens, up to twice for long notes)
    steered = grounding_metrics(model, tokenizer, "Robin", QUESTIONS, embed, config)
    plain = grounding_metrics(model, tokenizer, "Robin", QUESTIONS, embed, config.but(copy_bonus=0, start_bonus=0))

    assert steered["facts"] == 1.0 and "14 daily dumps" in steered["answers"][0]
    assert "1:5:5" in steered["answers"][1]
    assert steered["grounding"] >= 0.5 and plain["grounding"] == 0.0  # the steered answer goes on in gibberish
    assert plain["facts"] == 0.0


def test_only_questions_made_from_held_out_text_are_asked():
    split = DataSplit(["trained text"], ["I keep 14 daily dumps on a second drive. More held-out text."], [7])
    record = {"kind": "grounded", "instruction": "Q?", "context": ["n"], "answer": "x", "document_id": 3}
    records = [
        {**record, "instruction": "From a held-out document?", "document_id": 7},
        {**record, "instruction": "From the held-out text?", "answer": "I keep 14 daily dumps on a second drive."},
        {**record, "instruction": "From trained text?", "answer": "trained text"},
        {**record, "instruction": "A style sample?", "kind": "style", "document_id": 7},
    ]

    asked = [q.question for q in heldout_questions(records, split, 6)]

    assert asked == ["From a held-out document?", "From the held-out text?"]


def test_the_gate_reports_grounding_per_model_and_on_the_model_page(owner_source, owner, owner_client, settings):
    from training.actions import do_start_training_run

    settings.TWIN_GATE_METRICS = ["perplexity", "grounding"]
    version = ModelVersion.objects.get(training_run=do_start_training_run(owner))
    report = version.eval_report

    assert report["heldout"]["grounded_questions"] >= 1
    assert all(0.0 <= report["models"][name]["grounding"] <= 1.0 for name in ("base", "candidate"))
    assert version.grounding_score == report["models"]["candidate"]["grounding"]
    check = next(c for c in report["checks"] if c["metric"] == "grounding")
    assert check["candidate"] == version.grounding_score and check["reference"] == report["models"]["base"]["grounding"]
    sample = report["grounded_samples"][0]
    assert sample["candidate"] and sample["base"] and sample["fact"]

    page = owner_client.get(reverse("model-detail", args=[version.pk])).content.decode()
    assert "Answered from notes" in page and sample["question"] in page
