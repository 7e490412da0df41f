"""Preference (DPO) datasets: the author's passage (chosen) against the base model's answer (rejected),
built on the "gpu" queue with the tiny model, versioned and hashed, split by document like the instruct
dataset, in TRL's conversational preference format."""

import hashlib

import pytest
from celery import current_app

from core.jobs import JobStatus
from features.datasets import read_records
from features.models import DatasetVersion
from features.preference import build_pairs, preference_prompts
from tests.conftest import add_markdown_source
from tests.features.test_datasets import essay
from training.actions import TrainingRefused, do_queue_preference_run, do_start_training_run
from training.models import PreferenceRun

PREFERENCE_TASK = PreferenceRun.task_name
ROLES = {"prompt": ["system", "user"], "chosen": ["assistant"], "rejected": ["assistant"]}


@pytest.fixture
def small_builds(settings):
    settings.TWIN_PREFERENCE_MAX_PAIRS = 12
    settings.TWIN_PREFERENCE_MAX_NEW_TOKENS = 12


@pytest.fixture
def instruct(owner, small_builds):
    """An instruct dataset over four documents (so whole documents can be held out)."""
    for seed in range(4):
        add_markdown_source(owner, f"garden-{seed}.md", essay(seed, sections=2))
    return DatasetVersion.objects.for_user(owner).instruct().first()  # v4: one version per upload


def build(instruct) -> PreferenceRun:
    run = do_queue_preference_run(instruct)  # eager Celery: the task has run when this returns
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, run.error
    return run


@pytest.mark.django_db
def test_each_pair_prefers_the_authors_passage_to_the_base_models_answer(owner, instruct):
    run = build(instruct)

    preference = run.dataset_version
    pairs = read_records(preference.file_path)
    style = {(r["instruction"], r["answer"]) for r in read_records(instruct.file_path) if r["kind"] == "style"}
    assert len(pairs) == 12 == preference.sample_count
    for pair in pairs:
        assert {field: [m["role"] for m in pair[field]] for field in ROLES} == ROLES
        chosen, rejected = pair["chosen"][0]["content"], pair["rejected"][0]["content"]
        assert (pair["instruction"], chosen) in style  # the author's own passage, verbatim
        assert rejected.strip() and rejected != chosen
        # the twin's serving write template: the brief, asked as the Write page asks it
        assert pair["prompt"][1]["content"].endswith(f"Brief: {pair['instruction']}")
        assert "You are Alice." in pair["prompt"][0]["content"]
    assert preference.lineage["generator"] == "base:tiny:greedy-12"
    assert run.generator == "base:tiny:greedy-12" and run.pairs_generated == 12


@pytest.mark.django_db
def test_pairs_keep_the_instruct_datasets_split_by_whole_documents(owner, instruct):
    pairs = read_records(build(instruct).dataset_version.file_path)

    instruct_split = {(r["instruction"], r["answer"]): r["split"] for r in read_records(instruct.file_path)}
    assert all(p["split"] == instruct_split[(p["instruction"], p["chosen"][0]["content"])] for p in pairs)
    splits_of = {}
    for pair in pairs:
        splits_of.setdefault(pair["document_id"], set()).add(pair["split"])
    assert all(len(splits) == 1 for splits in splits_of.values())
    assert {"train", "test"} == set().union(*splits_of.values())


@pytest.mark.django_db
def test_the_version_is_hashed_numbered_on_its_own_and_linked_to_its_instruct_dataset(owner, instruct):
    preference = build(instruct).dataset_version

    body = preference.file_path.read_bytes()
    assert hashlib.sha256(body).hexdigest() == preference.sha256
    assert preference.file_path.name == f"preference-v1-{preference.sha256[:12]}.jsonl"
    assert (preference.kind, preference.version, instruct.version) == ("preference", 1, 4)
    assert preference.instruct_dataset == instruct
    assert preference.lineage["instruct_dataset"] == {"id": instruct.pk, "version": 4, "sha256": instruct.sha256}
    assert preference.document_count == 4
    records = read_records(preference.file_path)
    assert sum(r["split"] == "test" for r in records) == preference.test_count > 0


@pytest.mark.django_db
def test_a_rebuild_reuses_the_earlier_answers_and_the_version(owner, instruct):
    first = build(instruct).dataset_version

    again = build(instruct)

    assert again.dataset_version == first and again.pairs_generated == 0
    assert "unchanged" in again.message
    assert DatasetVersion.objects.filter(owner=owner).preference().count() == 1


@pytest.mark.django_db
def test_a_queued_build_is_joined_rather_than_duplicated(owner, instruct):
    queued = PreferenceRun.objects.create(owner=owner, instruct_dataset=instruct)

    assert do_queue_preference_run(instruct) == queued
    assert PreferenceRun.objects.filter(owner=owner).count() == 1


def test_the_build_runs_on_the_gpu_queue():
    assert current_app.amqp.router.route({}, PREFERENCE_TASK)["queue"].name == "gpu"
    assert PREFERENCE_TASK in current_app.tasks


@pytest.mark.django_db
def test_a_plain_run_takes_the_instruct_dataset_and_a_preference_run_needs_an_approved_model(owner, instruct):
    preference = build(instruct).dataset_version

    assert do_start_training_run(owner).dataset_version == instruct  # the latest instruct, never a preference one
    with pytest.raises(TrainingRefused, match="refines the twin's approved model"):
        do_start_training_run(owner, preference)


@pytest.mark.django_db
def test_a_new_instruct_version_builds_a_preference_dataset_only_when_asked_to(owner, settings, small_builds):
    add_markdown_source(owner, "garden-0.md", essay(0, sections=2))
    assert not PreferenceRun.objects.exists()

    settings.TWIN_PREFERENCE_AUTO = True
    add_markdown_source(owner, "garden-1.md", essay(1, sections=2))

    newest = DatasetVersion.objects.for_user(owner).instruct().first()
    assert newest.version == 2
    assert DatasetVersion.objects.for_user(owner).preference().get().instruct_dataset == newest


@pytest.mark.django_db
def test_a_missing_instruct_file_fails_the_build_with_a_reason(owner, instruct):
    instruct.file_path.unlink()

    run = do_queue_preference_run(instruct)

    run.refresh_from_db()
    assert run.status == JobStatus.FAILED and "missing from storage" in run.error
    assert not DatasetVersion.objects.filter(owner=owner).preference().exists()


def sample(instruction: str, answer: str, document_id: int = 1, kind: str = "style", split: str = "train") -> dict:
    return {"kind": kind, "instruction": instruction, "answer": answer, "document_id": document_id}


def test_pairs_whose_answer_is_empty_or_the_passage_itself_are_dropped():
    samples = [{**sample(f"Q{i}", f"My passage {i}."), "title": "T", "split": "train"} for i in range(3)]
    prompts = [[{"role": "user", "content": s["instruction"]}] for s in samples]

    pairs = build_pairs(samples, prompts, ["  ", "my  passage 1.", "Something generic."])

    assert [p["instruction"] for p in pairs] == ["Q2"]
    assert pairs[0]["rejected"] == [{"role": "assistant", "content": "Something generic."}]


def test_prompts_are_the_distinct_style_samples_spread_over_the_dataset():
    records = [sample(f"Q{i}", f"A{i}", document_id=i) for i in range(10)]
    records += [sample("Q3", "A3", document_id=3), sample("Why?", "Because.", kind="grounded")]

    assert [r["instruction"] for r in preference_prompts(records, 0)] == [f"Q{i}" for i in range(10)]
    assert [r["instruction"] for r in preference_prompts(records, 4)] == ["Q0", "Q3", "Q6", "Q9"]
    assert [r["instruction"] for r in preference_prompts(records, 1)] == ["Q0"]
