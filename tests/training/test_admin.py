"""Staff review in the Django admin: the evaluation report, then Approve or Reject."""

import pytest
from django.urls import reverse

from training.actions import do_start_training_run
from training.models import ModelVersion

pytestmark = pytest.mark.django_db


@pytest.fixture
def candidate(owner_source, owner):
    return ModelVersion.objects.get(training_run=do_start_training_run(owner))


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def test_the_change_page_shows_the_report_and_the_review_buttons(staff_client, candidate):
    response = staff_client.get(reverse("admin:training_modelversion_change", args=[candidate.pk]))
    assert response.status_code == 200
    assert b"Held-out loss" in response.content and str(candidate.adapter_loss).encode() in response.content
    assert b'value="approve"' in response.content and b'value="reject"' in response.content


def test_approving_from_the_change_page_makes_it_production(staff_client, candidate, staff):
    url = reverse("admin:training_modelversion_review", args=[candidate.pk])
    response = staff_client.post(url, {"_review": "approve"})
    assert response.status_code == 302
    candidate.refresh_from_db()
    assert candidate.status == "production" and candidate.reviewed_by == staff


def test_rejecting_from_the_change_page(staff_client, candidate):
    staff_client.post(reverse("admin:training_modelversion_review", args=[candidate.pk]), {"_review": "reject"})
    candidate.refresh_from_db()
    assert candidate.status == "rejected"


def test_the_changelist_actions_approve_and_reject(staff_client, candidate):
    changelist = reverse("admin:training_modelversion_changelist")
    staff_client.post(changelist, {"action": "approve", "_selected_action": [candidate.pk]})
    candidate.refresh_from_db()
    assert candidate.status == "production"
    response = staff_client.post(changelist, {"action": "reject", "_selected_action": [candidate.pk]}, follow=True)
    candidate.refresh_from_db()
    assert candidate.status == "production" and b"approve another version first" in response.content


def test_only_staff_can_review(owner_client, candidate):
    response = owner_client.post(
        reverse("admin:training_modelversion_review", args=[candidate.pk]), {"_review": "approve"}
    )
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    candidate.refresh_from_db()
    assert candidate.status == "candidate"
