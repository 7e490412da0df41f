"""The dataset page: length histograms of the samples, and the document each sample came from."""

import re

import pytest

from features.datasets import read_records
from features.models import DatasetVersion
from features.templatetags.feature_tags import bins, length_histogram

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
