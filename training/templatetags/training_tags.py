"""Inline SVG charts (loss curves, metrics per version): no charting library, no JavaScript."""

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from ..models import ModelVersion

register = template.Library()

WIDTH, HEIGHT, PAD = 480, 160, 28
SMOOTHING = 0.8  # exponential moving average: per-step loss on small batches is noisy


def smoothed(values: list[float]) -> list[float]:
    out, average = [], values[0]
    for value in values:
        average = SMOOTHING * average + (1 - SMOOTHING) * value
        out.append(average)
    return out


def _scale(series: list[list], max_x: float):
    """A function (x, y) -> "x,y" in SVG space, and the y range, for all the series' points."""
    values = [y for points in series for _, y in points]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    max_x = max_x or 1

    def xy(x, y):
        px = PAD + (WIDTH - 2 * PAD) * x / max_x
        py = PAD / 2 + (HEIGHT - 1.5 * PAD) * (1 - (y - low) / span)
        return f"{px:.1f},{py:.1f}"

    return xy, low, high


def _axis_labels(low: float, high: float):
    return format_html_join(
        "",
        '<text x="2" y="{}" class="axis">{}</text>',
        [(PAD / 2 + 4, f"{high:.2f}"), (HEIGHT - PAD + 4, f"{low:.2f}")],
    )


@register.simple_tag
def loss_curve(history, total_steps=0, validation=None):
    """Training loss (faint per step, a smoothed trend) and, when given, validation loss on
    held-out documents (dashed, with dots; its step 0 is the base model)."""
    if not history:
        return mark_safe('<p class="muted">The loss curve appears after the first step.</p>')
    validation = [list(p) for p in (validation or [])]
    steps = [point[0] for point in history]
    losses = [point[1] for point in history]
    max_step = max(total_steps or 0, max(steps), 1)
    xy, low, high = _scale([history, validation] if validation else [history], max_step)
    points = " ".join(xy(s, v) for s, v in zip(steps, losses, strict=True))
    trend = " ".join(xy(s, v) for s, v in zip(steps, smoothed(losses), strict=True))
    val_line = ""
    if validation:
        val_points = " ".join(xy(s, v) for s, v in validation)
        dots = format_html_join("", '<circle cx="{}" cy="{}" r="2.5"/>', (xy(s, v).split(",") for s, v in validation))
        val_line = format_html(
            '<g class="validation"><polyline fill="none" stroke="currentColor" stroke-dasharray="5 3" '
            'stroke-width="2" points="{}"/>{}</g>'
            '<text x="{}" y="12" class="axis" text-anchor="end">— training · - - held-out ({} → {})</text>',
            val_points,
            dots,
            WIDTH - 4,
            f"{validation[0][1]:.2f}",
            f"{validation[-1][1]:.2f}",
        )
    return format_html(
        '<svg class="loss-curve" viewBox="0 0 {w} {h}" role="img" '
        'aria-label="Training loss from {hi} to {last}">'
        '<polyline fill="none" stroke="currentColor" stroke-opacity="0.3" stroke-width="1.5" points="{points}"/>'
        '<polyline class="trend" fill="none" stroke="currentColor" stroke-width="2.5" points="{trend}"/>{val}{labels}'
        '<text x="{w2}" y="{h2}" class="axis" text-anchor="middle">step (of {steps})</text></svg>',
        w=WIDTH,
        h=HEIGHT,
        hi=f"{losses[0]:.2f}",
        last=f"{losses[-1]:.2f}",
        points=points,
        trend=trend,
        val=val_line,
        labels=_axis_labels(low, high),
        w2=WIDTH / 2,
        h2=HEIGHT - 4,
        steps=max_step,
    )


@register.simple_tag
def version_chart(points, label):
    """One metric across model versions: points [[version, value], ...] (None values skipped)."""
    points = [[v, y] for v, y in points if y is not None]
    if not points:
        return format_html('<p class="muted">No {} measured yet.</p>', label)
    first = points[0][0]
    shifted = [[v - first + 0.5, y] for v, y in points]
    span = max(1, points[-1][0] - first + 1)
    xy, low, high = _scale([shifted], span)
    line = " ".join(xy(x, y) for x, y in shifted)
    dots = format_html_join(
        "",
        '<circle cx="{}" cy="{}" r="3.5"><title>v{}: {}</title></circle>',
        ((*xy(x, y).split(","), v, y) for (x, y), (v, _) in zip(shifted, points, strict=True)),
    )
    return format_html(
        '<svg class="version-chart" viewBox="0 0 {w} {h}" role="img" aria-label="{label} per model version">'
        '<polyline fill="none" stroke="currentColor" stroke-width="2" points="{line}"/>{dots}{labels}'
        '<text x="{w2}" y="{h2}" class="axis" text-anchor="middle">{label} by version (v{a}–v{b})</text></svg>',
        w=WIDTH,
        h=HEIGHT,
        label=label,
        line=line,
        dots=dots,
        labels=_axis_labels(low, high),
        w2=WIDTH / 2,
        h2=HEIGHT - 4,
        a=points[0][0],
        b=points[-1][0],
    )


def fidelity_trend(owner) -> dict:
    """The twin-fidelity score of what serves (or of the newest evaluated version), and its trend."""
    evaluated = list(
        ModelVersion.objects.for_user(owner)
        .filter(fidelity_score__isnull=False)
        .order_by("version")
        .values_list("version", "fidelity_score", "status")
    )
    if not evaluated:
        return {"score": None, "points": []}
    serving = [row for row in evaluated if row[2] == ModelVersion.Status.PRODUCTION]
    current = serving[-1] if serving else evaluated[-1]
    previous = [row for row in evaluated if row[0] < current[0]]
    change = round(current[1] - previous[-1][1], 1) if previous else None
    return {
        "score": current[1],
        "version": current[0],
        "serving": bool(serving),
        "change": change,
        "points": [[v, s] for v, s, _ in evaluated],
    }


@register.inclusion_tag("training/_fidelity.html")
def twin_fidelity(owner):
    return fidelity_trend(owner)


OVERLAY_COLOURS = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777")


@register.simple_tag
def loss_overlay(runs):
    """Each run's smoothed training loss (faint) and held-out loss (dashed) on one chart, a colour
    per run, so a sweep's runs compare at a glance."""
    runs = [r for r in runs if r.loss_history]
    if not runs:
        return mark_safe('<p class="muted">The curves appear after the first run\'s first step.</p>')
    max_step = max(max(r.total_steps, r.loss_history[-1][0]) for r in runs)
    xy, low, high = _scale([r.loss_history for r in runs] + [r.val_history for r in runs if r.val_history], max_step)
    lines, legend = [], []
    for i, run in enumerate(runs):
        colour = OVERLAY_COLOURS[i % len(OVERLAY_COLOURS)]
        steps = [point[0] for point in run.loss_history]
        trend = " ".join(xy(s, v) for s, v in zip(steps, smoothed([p[1] for p in run.loss_history]), strict=True))
        lines.append((colour, "0.45", "1.5", "none", trend))
        if run.val_history:
            lines.append((colour, "1", "2", "5 3", " ".join(xy(s, v) for s, v in run.val_history)))
        legend.append((40 + 60 * i, colour, run.pk))
    polylines = format_html_join(
        "",
        '<polyline fill="none" stroke="{}" stroke-opacity="{}" stroke-width="{}" stroke-dasharray="{}" points="{}"/>',
        lines,
    )
    names = format_html_join("", '<text x="{}" y="12" class="axis" fill="{}">run {}</text>', legend)
    return format_html(
        '<svg class="loss-curve" viewBox="0 0 {} {}" role="img" aria-label="Loss curves of {} runs">{}{}{}</svg>',
        WIDTH,
        HEIGHT,
        len(runs),
        polylines,
        names,
        _axis_labels(low, high),
    )
