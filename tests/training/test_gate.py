"""The evaluation gate: its metrics, its verdict, and approval that needs a pass or a written reason."""

import pytest

from training.actions import TrainingRefused, do_approve_model_version, do_start_training_run
from training.evaluation import GateConfig, fidelity_score, verdict
from training.models import ModelVersion
from training.stylometry import DeltaSpace, copy_rate, training_ngrams

AUTHOR = (
    "It is the nature of the thing that the world should be so, and of the man that he should know it. "
    "Of all the follies of the age, the folly of the wise is the most to be pitied, and the least to be cured. "
) * 30
OTHER = (
    "We went down to the river and we swam until dark, then we ate bread by a fire we had built ourselves. "
    "My brother laughed at me because I was cold, but I did not care, we were happy and tired. "
) * 30


def models(candidate=None, production=None, base=None):
    base = {"perplexity": 40.0, "delta": 1.0, "similarity": 0.5, "copy_rate": 0.0, "grounding": 0.8, **(base or {})}
    out = {"base": base}
    out["candidate"] = {**out["base"], **(candidate or {})}
    if production is not None:
        out["production"] = {**out["base"], **production}
    return out


def test_a_first_candidate_must_beat_the_base_model():
    passed, checks, reference = verdict(models(candidate={"perplexity": 30.0, "delta": 0.9}), GateConfig())
    assert passed and reference == "base" and all(c["passed"] for c in checks)

    passed, checks, _ = verdict(models(candidate={"perplexity": 41.0}), GateConfig())
    assert not passed and [c["metric"] for c in checks if not c["passed"]] == ["perplexity"]


def test_a_first_candidate_must_beat_the_base_model_by_a_margin():
    """Another author's adapter lowers the base model's perplexity a little (x0.99 in
    bench/fidelity.py); only a clear gain counts for a first version."""
    passed, checks, _ = verdict(models(candidate={"perplexity": 39.0}), GateConfig())  # x0.975
    assert not passed and checks[0]["rule"] == "under 0.95 x the base's"
    passed, _, _ = verdict(models(candidate={"perplexity": 37.0}), GateConfig())  # x0.925
    assert passed
    passed, _, _ = verdict(models(candidate={"perplexity": 39.0}), GateConfig(first_perplexity_ratio=1.0))
    assert passed
    # Against production, any gain counts: the margin is the first version's alone.
    passed, _, _ = verdict(models(candidate={"perplexity": 29.5}, production={"perplexity": 30.0}), GateConfig())
    assert passed


def test_a_later_candidate_must_beat_production_not_only_the_base():
    better_than_base_only = models(candidate={"perplexity": 35.0}, production={"perplexity": 30.0})
    passed, checks, reference = verdict(better_than_base_only, GateConfig())
    assert not passed and reference == "production"
    assert checks[0] == {
        "metric": "perplexity",
        "candidate": 35.0,
        "reference": 30.0,
        "passed": False,
        "rule": "lower than the production",
    }


@pytest.mark.parametrize(
    ("candidate", "failing"),
    [
        ({"perplexity": 30.0, "delta": 1.5}, "style"),  # sounds less like the author
        ({"perplexity": 30.0, "similarity": 0.2}, "similarity"),  # drifts off topic
        ({"perplexity": 30.0, "copy_rate": 0.6}, "copy_rate"),  # regurgitates its training text
        ({"perplexity": 30.0, "grounding": 0.7}, "grounding"),  # says less of what its notes support
    ],
)
def test_each_configured_metric_can_fail_a_candidate(candidate, failing):
    passed, checks, _ = verdict(models(candidate=candidate), GateConfig())
    assert not passed and [c["metric"] for c in checks if not c["passed"]] == [failing]
    passed, _, _ = verdict(models(candidate=candidate), GateConfig(metrics=["perplexity"]))
    assert passed  # a metric that is not configured does not count


def test_grounding_within_the_tolerance_passes_and_against_production_too():
    passed, checks, _ = verdict(models(candidate={"perplexity": 30.0, "grounding": 0.76}), GateConfig())
    assert passed and next(c for c in checks if c["metric"] == "grounding")["passed"]  # 0.8 - 0.05 <= 0.76
    worse_than_production = models(candidate={"perplexity": 30.0, "grounding": 0.85}, production={"grounding": 0.95})
    passed, checks, reference = verdict(worse_than_production, GateConfig())
    assert not passed and reference == "production"
    assert [c["metric"] for c in checks if not c["passed"]] == ["grounding"]


def test_grounding_that_was_not_measured_does_not_pass_when_it_is_configured():
    """No held-out grounded question (grounding None): the gate cannot vouch for grounding."""
    unmeasured = models(candidate={"perplexity": 30.0, "grounding": None}, base={"grounding": None})
    passed, checks, _ = verdict(unmeasured, GateConfig())
    check = next(c for c in checks if c["metric"] == "grounding")
    assert not passed and not check["passed"] and check["candidate"] is None and "not measured" in check["rule"]
    assert verdict(unmeasured, GateConfig(metrics=["perplexity", "style"]))[0]  # not configured: not counted


def test_the_fidelity_score_is_the_mean_gain_over_the_base_model():
    assert fidelity_score(models(candidate={"perplexity": 30.0, "delta": 0.9})) == 17.5  # (25 % + 10 %) / 2
    assert fidelity_score(models()) == 0.0


def test_burrows_delta_is_lower_for_the_same_author():
    space = DeltaSpace([AUTHOR, OTHER])
    same = space.delta(AUTHOR[: len(AUTHOR) // 2], AUTHOR[len(AUTHOR) // 2 :])
    different = space.delta(OTHER, AUTHOR)
    assert same < different
    assert space.delta("", AUTHOR) is None


def test_the_copy_rate_counts_generated_8_grams_seen_in_training_text():
    seen = training_ngrams([AUTHOR])
    assert copy_rate([AUTHOR[:300]], seen) == 1.0
    assert copy_rate(["completely new words that nobody ever wrote down before today at all"], seen) == 0.0
    assert copy_rate(["too short"], seen) is None


@pytest.fixture
def gate_on_perplexity(settings):
    # The tiny random model writes gibberish: style and topicality are tested above, on real text.
    settings.TWIN_GATE_METRICS = ["perplexity"]


def test_the_gate_blocks_a_worse_candidate_and_an_override_needs_a_reason(
    owner_source, owner, staff, gate_on_perplexity
):
    first = ModelVersion.objects.get(training_run=do_start_training_run(owner))
    assert first.verdict == "passed", first.eval_report["checks"]
    do_approve_model_version(first, staff)

    # A run that barely trains is worse than production on held-out perplexity.
    worse = ModelVersion.objects.get(training_run=do_start_training_run(owner, learning_rate=1e-7))
    report = worse.eval_report
    assert worse.evaluation_status == "done" and worse.verdict == "failed"
    assert report["reference"] == "production" and report["production_version"] == first.version
    assert set(report["models"]) == {"base", "production", "candidate"}
    assert all({"base", "production", "candidate"} <= set(sample) for sample in report["samples"])
    # Style is measured on continuations of held-out passages, kept side by side too.
    assert report["style_samples"] and report["config"]["style_passages"] >= len(report["style_samples"])
    assert all({"opening", "base", "production", "candidate"} <= set(s) for s in report["style_samples"])

    with pytest.raises(TrainingRefused, match="failed the evaluation gate"):
        do_approve_model_version(worse, staff)
    with pytest.raises(TrainingRefused, match="failed the evaluation gate"):
        do_approve_model_version(worse, staff, override_reason="   ")
    worse.refresh_from_db()
    assert worse.status == "candidate" and ModelVersion.objects.for_user(owner).production() == first

    do_approve_model_version(worse, staff, override_reason="The owner asked for the newer writing.")
    worse.refresh_from_db()
    assert worse.status == "production" and worse.override_reason == "The owner asked for the newer writing."
    last = worse.events.last()
    assert last.actor == staff and last.to_status == "production" and "newer writing" in last.reason


def test_a_first_version_that_barely_beats_the_base_model_fails_the_margin(
    owner_source, owner, gate_on_perplexity, settings
):
    # A margin wider than four tiny-model steps reach (about x0.86; production's is 0.95, the suite's 1.0)
    settings.TWIN_GATE_FIRST_PERPLEXITY_RATIO = 0.8
    first = ModelVersion.objects.get(training_run=do_start_training_run(owner))
    check = first.eval_report["checks"][0]
    assert check["candidate"] < check["reference"]  # lower than the base model's...
    assert first.verdict == "failed" and check["rule"] == "under 0.8 x the base's"  # ...but not by 20 %


def test_a_candidate_cannot_be_approved_before_its_evaluation(owner_source, owner, staff, monkeypatch):
    monkeypatch.setattr("training.tasks.run_evaluation.delay", lambda pk: None)
    model_version = ModelVersion.objects.get(training_run=do_start_training_run(owner))
    assert model_version.evaluation_status == "pending"
    with pytest.raises(TrainingRefused, match="evaluation has not run yet"):
        do_approve_model_version(model_version, staff)


def test_a_non_staff_user_cannot_approve(owner_source, owner, stub_training):
    model_version = ModelVersion.objects.get(training_run=do_start_training_run(owner))
    assert model_version.verdict == "passed"
    with pytest.raises(TrainingRefused, match="Only staff"):
        do_approve_model_version(model_version, owner)
    model_version.refresh_from_db()
    assert model_version.status == "candidate"
