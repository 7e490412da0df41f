"""PostgreSQL restarted under a real gunicorn: clear 503s while it is down, then service again
with no manual step (CONN_HEALTH_CHECKS replaces the connections each gunicorn thread kept).

The database is a private cluster (tests/processes.PrivatePostgres) holding a copy of the test
database, so stopping it does not disturb the shared server other tests use.
"""

import threading
import time

import pytest
import requests
from django.conf import settings
from django.db import connection
from django.test import Client

from accounts.actions import do_issue_api_token
from tests import processes

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
THREADS = 4  # processes.start_web's gthread count: each keeps its own connection
TIMEOUT = 120  # per request: a loaded 2-core machine can be slow, never this slow


@pytest.fixture
def database():
    cluster = processes.PrivatePostgres()
    yield cluster
    cluster.destroy()


class Site:
    """The owner's API (token) and pages (session) on a gunicorn served from the private cluster."""

    def __init__(self, base: str, token: str, session: str):
        self.base, self.token, self.session = base, token, session

    def api(self) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        return requests.get(f"{self.base}/api/v1/sources/", headers=headers, timeout=TIMEOUT)

    def page(self) -> requests.Response:
        return requests.get(
            f"{self.base}/sources/", cookies={settings.SESSION_COOKIE_NAME: self.session}, timeout=TIMEOUT
        )

    def assert_serving(self):
        for _ in range(2 * THREADS):  # enough to reach every thread of the worker
            api, page = self.api(), self.page()
            assert api.status_code == 200, api.text[:300]
            assert page.status_code == 200 and "Sources" in page.text, page.text[:300]


@pytest.fixture
def site(database, owner, tmp_path):
    _, token = do_issue_api_token(owner, "restart test")
    browser = Client()
    browser.force_login(owner)
    session = browser.cookies[settings.SESSION_COOKIE_NAME].value
    database.create(copy_of=connection.settings_dict["NAME"])  # the user, token and session included
    port, log = processes.free_port(), tmp_path / "web.log"
    env = processes.process_env(DATABASE_URL=database.url, TWIN_TEST_CONN_MAX_AGE="60")  # production's reuse
    web = processes.start_web(port, log, env)
    site = Site(f"http://127.0.0.1:{port}", token, session)

    def up():
        try:
            return site.api().status_code == 200
        except requests.RequestException:  # not listening yet, or its first request still loading the site
            return False

    try:
        processes.wait_for(up, {"web": log}, "gunicorn to serve")
        site.log = log
        yield site
    finally:  # a web that never came up is stopped too
        processes.kill(web)


def test_kept_connections_survive_a_database_restart(site, database):
    site.assert_serving()  # every thread now holds a connection
    database.stop()
    database.start()
    site.assert_serving()  # the first request of each thread finds its connection dead and opens another


def test_requests_during_an_outage_get_a_clear_503_and_service_resumes_alone(site, database):
    site.assert_serving()
    statuses, stop = [], threading.Event()

    def keep_asking():  # requests in flight while the database goes down and comes back
        while not stop.is_set():
            statuses.extend([site.api().status_code, site.page().status_code])

    askers = [threading.Thread(target=keep_asking) for _ in range(2)]
    for asker in askers:
        asker.start()
    try:
        database.stop()
        api, page = site.api(), site.page()
        time.sleep(1)
        database.start()
    finally:
        stop.set()
        for asker in askers:
            asker.join(timeout=60)

    assert api.status_code == 503 and int(api.headers["Retry-After"]) > 0
    assert "database cannot be reached" in api.json()["detail"]
    assert page.status_code == 503 and int(page.headers["Retry-After"]) > 0
    assert "database cannot be reached" in page.text and "Traceback" not in page.text
    assert set(statuses) <= {200, 503}, f"other statuses while the database restarted: {sorted(set(statuses))}"
    site.assert_serving()
    assert "Internal Server Error" not in site.log.read_text()
