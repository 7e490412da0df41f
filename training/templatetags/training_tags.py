"""An inline SVG loss curve: no charting library, no JavaScript, renders in any page."""

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

register = template.Library()

WIDTH, HEIGHT, PAD = 480, 160, 28
SMOOTHING = 0.8  # exponential moving average: per-step loss on small batches is noisy


def smoothed(values: list[float]) -> list[float]:
    out, average = [], values[0]
    for value in values:
        average = SMOOTHING * average + (1 - SMOOTHING) * value
        out.append(average)
    return out


@register.simple_tag
def loss_curve(history, total_steps=0):
    if not history:
        return mark_safe('<p class="muted">The loss curve appears after the first step.</p>')
    steps = [point[0] for point in history]
    losses = [point[1] for point in history]
    max_step = max(total_steps or 0, max(steps), 1)
    low, high = min(losses), max(losses)
    span = (high - low) or 1.0

    def xy(step, loss):
        x = PAD + (WIDTH - 2 * PAD) * step / max_step
        y = PAD / 2 + (HEIGHT - 1.5 * PAD) * (1 - (loss - low) / span)
        return f"{x:.1f},{y:.1f}"

    points = " ".join(xy(s, v) for s, v in zip(steps, losses, strict=True))
    trend = " ".join(xy(s, v) for s, v in zip(steps, smoothed(losses), strict=True))
    labels = format_html_join(
        "",
        '<text x="2" y="{}" class="axis">{}</text>',
        [(PAD / 2 + 4, f"{high:.2f}"), (HEIGHT - PAD + 4, f"{low:.2f}")],
    )
    return format_html(
        '<svg class="loss-curve" viewBox="0 0 {w} {h}" role="img" '
        'aria-label="Training loss from {hi} to {last}">'
        '<polyline fill="none" stroke="currentColor" stroke-opacity="0.3" stroke-width="1.5" points="{points}"/>'
        '<polyline class="trend" fill="none" stroke="currentColor" stroke-width="2.5" points="{trend}"/>{labels}'
        '<text x="{w2}" y="{h2}" class="axis" text-anchor="middle">step (of {steps})</text></svg>',
        w=WIDTH,
        h=HEIGHT,
        hi=f"{losses[0]:.2f}",
        last=f"{losses[-1]:.2f}",
        points=points,
        trend=trend,
        labels=labels,
        w2=WIDTH / 2,
        h2=HEIGHT - 4,
        steps=max_step,
    )
