"""ops/alerts.yml parses as Prometheus rules and names only metrics that /metrics exports."""

import re
from pathlib import Path

import pytest
import yaml
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.django_db

RULES = Path(__file__).resolve().parents[2] / "ops" / "alerts.yml"
METRIC = re.compile(r"\b((?:twinsite|django)_[a-z0-9_]+)\b")
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")


def test_every_rule_names_exported_metrics(staff):
    rules = [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]
    client = Client()
    client.force_login(staff)
    client.get("/ops/")  # a response of each kind the HTTP rule counts
    families = list(text_string_to_metric_families(client.get("/metrics").content.decode()))
    exported = {f.name for f in families} | {s.name for f in families for s in f.samples}
    exported |= {f"{f.name}{suffix}" for f in families if f.type == "histogram" for suffix in HISTOGRAM_SUFFIXES}

    named = {name for rule in rules for name in METRIC.findall(rule["expr"])}

    assert {r["alert"] for r in rules} >= {
        "TwinsiteAnswerErrorRate",
        "TwinsiteFirstTokenSlow",
        "TwinsiteAnswersStuck",
        "TwinsiteQueueNotDraining",
        "TwinsiteGateFailing",
    }
    assert all(rule.get("annotations", {}).get("summary") for rule in rules)
    assert len(named) >= 8 and named <= exported, named - exported
