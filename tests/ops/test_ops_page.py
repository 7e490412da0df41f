"""The staff Operations page: charts from the traces, answers and refusals; staff only."""

import pytest

from chat.actions import do_answer
from chat.models import Message
from tests.chat.test_busy import ask_api, in_flight_answers
from twinsite import opsdata

pytestmark = pytest.mark.django_db


def test_the_page_charts_answers_latency_grounding_refusals_and_failures(
    staff_client, owner_api, owner_source, owner, settings
):
    do_answer(owner, "How much honey does a hive give in July?")
    failed = in_flight_answers(owner, 1)[0]
    Message.objects.filter(pk=failed.pk).update(status=Message.Status.FAILED)
    in_flight_answers(owner, 1)
    settings.TWIN_MAX_ANSWERS_IN_FLIGHT = 1
    assert ask_api(owner_api).status_code == 503

    page = staff_client.get("/ops/").content.decode()

    for label in (
        "answers per minute",
        "time to first token",
        "answers in flight",
        "refusals",
        "failed answers",
        "mean grounding score",
    ):
        assert f'aria-label="{label} over the last 1h"' in page, label
    assert "Answers waiting for the serving worker</th><td>1<" in page
    assert "busy: 1" in page
    assert "Celery queue “serve”" in page
    assert "How much honey" not in page  # aggregates only: no tenant's content


def test_each_window_has_its_buckets(staff_client):
    for name, (seconds, step) in opsdata.WINDOWS.items():
        window = opsdata.Window.named(name, now=1_000_000_000)
        assert len(window.series({})) == seconds // step
        page = staff_client.get(f"/ops/?window={name}")
        assert page.status_code == 200 and f"<strong>{name}</strong>" in page.content.decode()
    assert opsdata.Window.named("nonsense").name == "1h"


def test_series_put_each_answer_in_its_bucket(owner_source, owner):
    do_answer(owner, "How much honey does a hive give in July?")
    window = opsdata.Window.named("1h")

    answers = opsdata.answer_series(window)

    assert sum(v for v in answers["answers"] if v) == 1
    assert next(v for v in answers["ttft50"] if v is not None) > 0
    assert 0 <= next(v for v in answers["grounding"] if v is not None) <= 1
    assert opsdata.in_flight_series(window)[-1] == 0  # finished: no longer in flight
    in_flight_answers(owner, 2)
    assert opsdata.in_flight_series(window)[-1] == 2


def test_only_staff_see_the_page(owner_client, anon_client, staff_client):
    assert staff_client.get("/ops/").status_code == 200
    assert owner_client.get("/ops/").status_code == 403
    assert anon_client.get("/ops/").status_code == 302
