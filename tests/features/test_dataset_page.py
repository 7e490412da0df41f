"""The dataset page: length histograms of the samples, and the document each sample came from."""

import re

import pytest
from django.utils.html import escape

from features.datasets import read_records
from features.models import DatasetVersion
from features.templatetags.feature_tags import bins, length_histogram
from training.actions import do_queue_preference_run
from training.models import PreferenceRun

pytestmark = pytest.mark.django_db


def test_the_page_draws_length_histograms_and_links_each_sample_to_its_document(owner_client, owner, owner_source):
    dataset = DatasetVersion.objects.for_user(owner).get()
    document = owner_source.documents.get()
    records = read_records(dataset.file_path)

    page = owner_client.get(f"/datasets/{dataset.pk}/").content.decode()

    assert page.count('<svg class="loss-curve histogram"') == 2
    assert f'aria-label="{len(records)} samples' in page
    links = re.findall(r'From <a href="/documents/(\d+)/">([^<]+)</a>', page)
    assert links and set(links) == {(str(document.pk), document.title)}
    assert len(links) == min(len(records), 20)


def test_a_sample_whose_document_was_deleted_says_so(owner_client, owner, owner_source):
    dataset = DatasetVersion.objects.for_user(owner).get()
    owner_source.documents.all().delete()

    page = owner_client.get(f"/datasets/{dataset.pk}/").content.decode()

    assert "(no longer in your sources)" in page


def test_bins_cover_every_value_once():
    values = [1, 2, 2, 3, 50, 51, 120, 7, 7, 7]
    buckets = bins(values, count=5)

    assert sum(n for _, _, n in buckets) == len(values)
    assert buckets[0][0] == 1 and buckets[-1][1] >= 120
    assert all(low <= high for low, high, _ in buckets)


def test_one_length_is_one_bar_and_nothing_is_a_message():
    assert str(length_histogram([5, 5, 5])).count("<rect") == 1
    assert "No samples" in str(length_histogram([]))


@pytest.fixture
def preference(owner, owner_source, settings):
    settings.TWIN_PREFERENCE_MAX_PAIRS, settings.TWIN_PREFERENCE_MAX_NEW_TOKENS = 4, 8
    instruct = DatasetVersion.objects.for_user(owner).get()
    run = do_queue_preference_run(instruct)  # eager: built on return
    run.refresh_from_db()
    return run.dataset_version


def test_the_preference_page_shows_each_pair_chosen_and_rejected(owner_client, owner, preference):
    pairs = read_records(preference.file_path)

    page = owner_client.get(f"/datasets/{preference.pk}/").content.decode()

    assert f"Preference dataset v{preference.version}" in page
    assert f"instruct dataset v{preference.instruct_dataset.version}" in page
    assert page.count('<pre class="chosen">') == page.count('<pre class="rejected">') == len(pairs)
    assert escape(pairs[0]["rejected"][0]["content"]) in page and escape(pairs[0]["chosen"][0]["content"]) in page
    assert "Chosen: your passages" in page and page.count('<svg class="loss-curve histogram"') == 2


def test_the_datasets_page_lists_both_kinds_and_the_build(owner_client, preference):
    page = owner_client.get("/datasets/").content.decode()

    assert f'href="/datasets/{preference.instruct_dataset.pk}/">v1</a>' in page
    assert f'href="/datasets/{preference.pk}/">v1</a>' in page and preference.lineage["generator"] in page
    run = PreferenceRun.objects.get()
    assert f"Preference build {run.pk} from instruct v1" in page and "Succeeded" in page


def test_the_owner_builds_a_preference_dataset_from_the_instruct_page(owner_client, owner, owner_source, settings):
    settings.TWIN_PREFERENCE_MAX_PAIRS, settings.TWIN_PREFERENCE_MAX_NEW_TOKENS = 2, 8
    instruct = DatasetVersion.objects.for_user(owner).get()
    assert "Build a preference dataset" in owner_client.get(f"/datasets/{instruct.pk}/").content.decode()

    response = owner_client.post(f"/datasets/{instruct.pk}/preference/", follow=True)

    run = PreferenceRun.objects.get(owner=owner)
    assert response.redirect_chain[-1][0] == f"/datasets/{instruct.pk}/"
    assert run.status == "succeeded" and run.dataset_version.instruct_dataset == instruct
    assert f"preference v{run.dataset_version.version}" in response.content.decode()


def test_another_user_cannot_build_or_see_my_preference_dataset(other_client, owner, preference):
    instruct = preference.instruct_dataset

    assert other_client.post(f"/datasets/{instruct.pk}/preference/").status_code == 404
    assert other_client.get(f"/datasets/{preference.pk}/").status_code == 404
    assert PreferenceRun.objects.filter(owner=owner).count() == 1
    assert f"/datasets/{preference.pk}/" not in other_client.get("/datasets/").content.decode()


def test_anonymous_visitors_are_sent_to_log_in(anon_client, preference):
    response = anon_client.post(f"/datasets/{preference.instruct_dataset.pk}/preference/")

    assert response.status_code == 302 and "/login" in response["Location"]
    assert anon_client.get(f"/datasets/{preference.pk}/").status_code == 302
    assert PreferenceRun.objects.count() == 1


def test_building_needs_a_post_and_an_instruct_dataset(owner_client, owner, preference):
    assert owner_client.get(f"/datasets/{preference.instruct_dataset.pk}/preference/").status_code == 405

    response = owner_client.post(f"/datasets/{preference.pk}/preference/", follow=True)

    assert "built from an instruct dataset" in response.content.decode()
    assert PreferenceRun.objects.filter(owner=owner).count() == 1
