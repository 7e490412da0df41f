"""The owner's pages: the evaluation report with its plots and history, the run's curves, the dashboard score."""

import pytest
from django.urls import reverse

from training.actions import do_approve_model_version, do_start_training_run
from training.models import ModelVersion
from training.templatetags.training_tags import fidelity_trend, loss_curve

pytestmark = pytest.mark.django_db


@pytest.fixture
def versions(owner_source, owner, staff, stub_training):
    first = ModelVersion.objects.get(training_run=do_start_training_run(owner))
    do_approve_model_version(first, staff)
    second = ModelVersion.objects.get(training_run=do_start_training_run(owner))
    ModelVersion.objects.filter(pk=second.pk).update(fidelity_score=30.5)
    return first, second


def test_the_report_page_shows_the_gate_side_by_side_answers_plots_and_history(owner_client, versions):
    _, second = versions
    page = owner_client.get(reverse("model-detail", args=[second.pk])).content.decode()

    assert "Passed the gate" in page
    assert "twin fidelity <strong>30.5 %</strong> closer to your writing than the base model" in page
    assert "<th>base</th>" in page and "<th>candidate</th>" in page and "Bees!" in page  # side by side
    assert "<th>Grounding</th>" in page and "<th>Facts stated</th>" in page
    assert page.count('class="version-chart"') == 3 and 'class="loss-curve"' in page
    assert f"/api/v1/models/{second.pk}/export/" in page
    assert "Evaluation gate: beats the base model" in page and "Trained by run" in page  # history


def test_the_loss_curve_draws_validation_loss_on_held_out_documents():
    svg = str(loss_curve([[1, 3.0], [2, 2.0], [3, 2.5]], 4, [[0, 3.2], [3, 2.2]]))

    assert svg.count("<polyline") == 3 and svg.count("<circle") == 2
    assert "held-out (3.20 → 2.20)" in svg


def test_the_dashboard_shows_the_twin_fidelity_and_its_trend(owner_client, owner, versions):
    first, _ = versions
    trend = fidelity_trend(owner)
    assert trend["score"] == 23.2 and trend["version"] == first.version and trend["serving"]  # what serves
    assert trend["points"] == [[1, 23.2], [2, 30.5]]

    page = owner_client.get(reverse("dashboard")).content.decode()
    assert "<strong>23.2 %</strong></span> closer to your writing than the base model" in page  # a unit, said
    assert "first evaluated version" in page
    assert 'aria-label="twin fidelity per model version"' in page


def test_without_an_evaluated_version_the_dashboard_says_so(owner_client, owner):
    assert "Twin fidelity appears once" in owner_client.get(reverse("dashboard")).content.decode()
