"""The Prometheus endpoint: django-prometheus's request, database and migration metrics of this
web process, and Twinsite's own, read at scrape time from what every process and machine
shares (the database, the refusal counter and the broker's queues in Redis), so one scrape of
any web process gives the site's figures.

Only staff (a session) and an allow-listed scraper (TWIN_METRICS_ALLOWED_IPS, or the bearer
TWIN_METRICS_TOKEN) may read it; anyone else gets a 404, as if there were no such page.
"""

import hmac
import ipaddress
import os

import prometheus_client
from django.conf import settings
from django.db.models import Count, Q, Sum
from django.http import Http404, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_safe
from prometheus_client import multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from accounts.throttling import client_ip
from chat.admission import REFUSAL_REASONS, REFUSALS
from chat.models import Message, PromptTrace
from core import counters
from core.queue import queue_lengths
from training.models import EvaluationRun, ModelVersion, TrainingRun

# Time to first token buckets (seconds): a lone question on 2 CPU cores takes about 1-5 s.
TTFT_BUCKETS = (0.25, 0.5, 1, 2, 3, 5, 8, 13, 21, 34, 60)


class TwinsiteCollector:
    """Twinsite's figures, computed at each scrape (a few aggregate queries)."""

    def collect(self):
        yield from self.answers()
        yield self.first_token()
        refusals = CounterMetricFamily(
            "twinsite_chat_refusals", "Questions refused as busy, by reason.", labels=["reason"]
        )
        counted = {**dict.fromkeys(REFUSAL_REASONS, 0), **counters.totals(REFUSALS)}  # 0s: alerts see a series
        for reason, n in sorted(counted.items()):
            refusals.add_metric([reason], n)
        yield refusals
        yield self.queues()
        yield from self.training()

    def answers(self):
        by_status = dict(
            Message.objects.filter(role=Message.Role.ASSISTANT).values_list("status").annotate(n=Count("pk"))
        )
        finished = CounterMetricFamily("twinsite_answers", "Answers finished, by status.", labels=["status"])
        in_flight = GaugeMetricFamily(
            "twinsite_answers_in_flight", "Answers waiting for or being made by the serving worker.", labels=["status"]
        )
        for status in Message.Status.values:
            family = in_flight if status in Message.IN_FLIGHT else finished
            family.add_metric([status], by_status.get(status, 0))
        oldest = Message.objects.filter(status=Message.Status.PENDING).order_by("created_at").values("created_at")[:1]
        age = (timezone.now() - oldest[0]["created_at"]).total_seconds() if oldest else 0
        yield finished
        yield in_flight
        yield GaugeMetricFamily(
            "twinsite_oldest_pending_answer_age_seconds",
            "How long the oldest waiting answer has waited (0: none).",
            age,
        )

    def first_token(self):
        """The prompt traces' time to first token as a cumulative histogram (answers the model made)."""
        traces = PromptTrace.objects.filter(first_token_ms__gt=0)
        figures = traces.aggregate(
            count=Count("pk"),
            total=Sum("first_token_ms"),
            **{f"le{i}": Count("pk", filter=Q(first_token_ms__lte=b * 1000)) for i, b in enumerate(TTFT_BUCKETS)},
        )
        buckets = [(str(b), figures[f"le{i}"]) for i, b in enumerate(TTFT_BUCKETS)] + [("+Inf", figures["count"])]
        return HistogramMetricFamily(
            "twinsite_answer_first_token_seconds",
            "Time from the start of generation to the answer's first token.",
            buckets=buckets,
            sum_value=(figures["total"] or 0) / 1000,
        )

    def queues(self):
        family = GaugeMetricFamily(
            "twinsite_celery_queue_length", "Tasks waiting in each Celery queue of the broker.", labels=["queue"]
        )
        for queue, length in queue_lengths().items():
            family.add_metric([queue], length)
        return family

    def training(self):
        jobs = CounterMetricFamily(
            "twinsite_jobs", "Training and evaluation jobs, by status.", labels=["kind", "status"]
        )
        for kind, model in (("training", TrainingRun), ("evaluation", EvaluationRun)):
            counts = dict(model.objects.values_list("status").annotate(n=Count("pk")))
            for status in model._meta.get_field("status").choices:
                jobs.add_metric([kind, status[0]], counts.get(status[0], 0))
        yield jobs
        verdicts = CounterMetricFamily(
            "twinsite_gate_verdicts", "Model versions the evaluation gate passed or failed.", labels=["verdict"]
        )
        counts = dict(ModelVersion.objects.exclude(verdict="").values_list("verdict").annotate(n=Count("pk")))
        for verdict in (ModelVersion.Verdict.PASSED, ModelVersion.Verdict.FAILED):
            verdicts.add_metric([verdict], counts.get(verdict, 0))
        yield verdicts


TWINSITE = prometheus_client.CollectorRegistry(auto_describe=False)
TWINSITE.register(TwinsiteCollector())


def may_scrape(request) -> bool:
    if request.user.is_authenticated and request.user.is_staff:
        return True
    token = settings.TWIN_METRICS_TOKEN
    given = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return True
    allowed = settings.TWIN_METRICS_ALLOWED_IPS
    if allowed:
        try:
            address = ipaddress.ip_address(client_ip(request))
        except ValueError:
            return False
        return any(address in ipaddress.ip_network(net, strict=False) for net in allowed)
    return False


def process_registry():
    """This process's django-prometheus metrics; all processes' with PROMETHEUS_MULTIPROC_DIR (several
    web processes), as django_prometheus.exports.ExportToDjangoView reads them."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = prometheus_client.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return prometheus_client.REGISTRY


@require_safe
def metrics(request):
    if not may_scrape(request):
        raise Http404
    body = prometheus_client.generate_latest(process_registry()) + prometheus_client.generate_latest(TWINSITE)
    return HttpResponse(body, content_type=prometheus_client.CONTENT_TYPE_LATEST)
