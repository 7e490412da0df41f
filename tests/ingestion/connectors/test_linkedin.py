"""LinkedIn: the data-export ZIP, built here the way LinkedIn writes it."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from ingestion.models import Document, Source
from tests.ingestion.files import make_zip
from tests.ingestion.sites import LONG_PARAGRAPH

pytestmark = pytest.mark.django_db

POST = "Shipping on Fridays is fine\r\nif your rollback takes one click. We rolled back twice last month."
SHARES = (
    "Date,ShareLink,ShareCommentary,SharedUrl,MediaUrl,Visibility\r\n"
    "2024-03-01 10:00:00,https://www.linkedin.com/feed/update/urn:li:share:1,"
    f'"{POST} ""Boring"" is a feature.",,,MEMBER_NETWORK\r\n'
    "2024-03-02 11:00:00,https://www.linkedin.com/feed/update/urn:li:share:2,,https://example.com/other,,PUBLIC\r\n"
)
LONG_COMMENT = LONG_PARAGRAPH.format(topic="code review")
COMMENTS = (
    f'Date,Link,Message\r\n2024-03-03 09:00:00,https://www.linkedin.com/x,"{LONG_COMMENT}"\r\n'
    "2024-03-04,x,Great post!\r\n"
)
ARTICLE = (
    "<html><head><title>Notes on reviews</title></head>"
    f"<body><h1>Notes on reviews</h1><p>{LONG_PARAGRAPH.format(topic='reviewing code slowly')}</p></body></html>"
)


def export(**extra):
    return make_zip(
        {
            "Shares.csv": SHARES,
            "Comments.csv": COMMENTS,
            "Articles/Articles/Notes on reviews.html": ARTICLE,
            "Connections.csv": "First Name,Last Name,Email Address\r\nEve,Secret,eve@example.com\r\n",
            "messages.csv": "FROM,TO,CONTENT\r\nEve,Me,a private message\r\n",
            **extra,
        }
    )


def upload(client, data, name="Basic_LinkedInDataExport_03-05-2024.zip"):
    return client.post(reverse("add-source", args=["linkedin"]), {"file": SimpleUploadedFile(name, data)})


def test_posts_articles_and_comments_become_documents_and_nothing_else_is_read(owner_client, owner):
    response = upload(owner_client, export())

    assert response.status_code == 302
    source = Source.objects.get(owner=owner)
    run = source.last_run
    assert run.status == "succeeded" and (run.documents_created, run.documents_skipped) == (3, 2)
    post = Document.objects.get(url="https://www.linkedin.com/feed/update/urn:li:share:1")
    assert post.category == "post" and post.title == "Shipping on Fridays is fine"
    expected = "Shipping on Fridays is fine\nif your rollback takes one click. We rolled back twice last month."
    assert post.raw_text == expected + ' "Boring" is a feature.'
    assert Document.objects.get(title="Notes on reviews").category == "article"
    assert Document.objects.filter(raw_text=LONG_COMMENT, category="post").exists()
    everything = " ".join(Document.objects.values_list("raw_text", flat=True))
    assert "eve@example.com" not in everything and "private message" not in everything
    reasons = {f["reason"] for f in run.failures}
    assert reasons == {"A reshare without words of your own.", "A comment too short to learn your voice from."}


def test_a_second_upload_of_the_same_export_stores_nothing_twice(owner_client, owner):
    upload(owner_client, export())
    upload(owner_client, export(), name="linkedin-again.zip")

    run = Source.objects.filter(owner=owner).order_by("-pk").first().last_run
    assert run.documents_created == 0 and run.documents_skipped == 5
    assert Document.objects.filter(owner=owner).count() == 3


def test_a_broken_file_in_the_export_fails_alone(owner_client, owner):
    upload(owner_client, export(**{"Articles/Articles/empty.html": "<html><body></body></html>"}))

    run = Source.objects.get(owner=owner).last_run
    assert run.documents_created == 3 and run.documents_failed == 1
    failed = [f for f in run.failures if f["failed"]]
    assert failed == [
        {
            "url": "linkedin://file/Articles/Articles/empty.html",
            "reason": "No article text was found in that file.",
            "failed": True,
        }
    ]


def test_a_zip_that_is_not_a_linkedin_export_is_refused(owner_client):
    response = upload(owner_client, make_zip({"notes.md": "# Notes\n\ntext"}))

    assert response.status_code == 400
    assert "That is not a LinkedIn data export" in response.content.decode()
    assert not Source.objects.exists()
