"""The staff Operations page: how the site answers, over the last hour to week.

It lives in the project package, like the dashboard, because it reads every app's rows. Charts
are inline SVG drawn like training's loss curves (training_tags), no charting library.
"""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_safe

from training.templatetags.training_tags import HEIGHT, OVERLAY_COLOURS, WIDTH, _axis_labels, _scale

from . import opsdata


def time_chart(series: dict[str, list], label: str, window: opsdata.Window):
    """One line per named series over the window's buckets; a bucket without a value is a gap."""
    drawn = {name: values for name, values in series.items() if any(v is not None for v in values)}
    if not drawn:
        return format_html('<p class="muted">No {} in the last {}.</p>', label, window.name)
    points = [[[i, v] for i, v in enumerate(values) if v is not None] for values in drawn.values()]
    xy, low, high = _scale([*points, [[0, 0]]], max(1, len(next(iter(drawn.values()))) - 1))  # y from 0
    lines = format_html_join(
        "",
        '<polyline fill="none" stroke="{}" stroke-width="2" points="{}"><title>{}</title></polyline>',
        (
            (OVERLAY_COLOURS[i % len(OVERLAY_COLOURS)], " ".join(xy(x, y) for x, y in line), name)
            for i, (name, line) in enumerate(zip(drawn, points, strict=True))
        ),
    )
    legend = format_html_join(
        "",
        '<text x="{}" y="12" class="axis" fill="{}">{}</text>',
        ((WIDTH - 8 - 90 * i, OVERLAY_COLOURS[i % len(OVERLAY_COLOURS)], n) for i, n in enumerate(drawn)),
    )
    return format_html(
        '<svg class="loss-curve ops-chart" viewBox="0 0 {} {}" role="img" aria-label="{} over the last {}">'
        '{}{}{}<text x="{}" y="{}" class="axis" text-anchor="middle">{} · last {} ({}-minute buckets)</text></svg>',
        WIDTH,
        HEIGHT,
        label,
        window.name,
        lines,
        format_html('<g text-anchor="end">{}</g>', legend) if len(drawn) > 1 else "",
        _axis_labels(low, high),
        WIDTH / 2,
        HEIGHT - 4,
        label,
        window.name,
        window.step // 60,
    )


@login_required
@require_safe
def ops(request):
    """Staff only (403 for anyone else signed in, as every staff page of the site)."""
    if not request.user.is_staff:
        raise PermissionDenied
    window = opsdata.Window.named(request.GET.get("window", "1h"))
    answers = opsdata.answer_series(window)
    charts = [
        ("Answers per minute", time_chart({"answers/min": answers["answers"]}, "answers per minute", window)),
        (
            "Time to first token (seconds)",
            time_chart({"p50": answers["ttft50"], "p95": answers["ttft95"]}, "time to first token", window),
        ),
        ("Answers in flight", time_chart({"in flight": opsdata.in_flight_series(window)}, "answers in flight", window)),
        ("Refused as busy", time_chart(opsdata.refusal_series(window), "refusals", window)),
        ("Failed answers", time_chart({"failed": opsdata.failure_series(window)}, "failed answers", window)),
        ("Grounding score", time_chart({"grounding": answers["grounding"]}, "mean grounding score", window)),
    ]
    context = {"window": window, "windows": opsdata.WINDOWS, "charts": charts, "now": opsdata.current_load()}
    return render(request, "ops/ops.html", context)
