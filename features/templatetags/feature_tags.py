"""An inline SVG histogram for the dataset page: no charting library, no JavaScript.

Drawn like training's loss curve (training_tags.loss_curve), which features may not
import (imports flow features -> training, not back).
"""

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

register = template.Library()

WIDTH, HEIGHT, PAD = 480, 140, 24
BINS = 12


def bins(values: list[int], count: int = BINS) -> list[tuple[int, int, int]]:
    """(low, high, how many) per bin of equal width covering the values."""
    low, high = min(values), max(values)
    width = max(1, -(-(high - low + 1) // count))  # ceiling division
    counts = [0] * count
    for value in values:
        counts[min((value - low) // width, count - 1)] += 1
    return [(low + i * width, low + (i + 1) * width - 1, n) for i, n in enumerate(counts) if low + i * width <= high]


@register.simple_tag
def length_histogram(values, unit="words"):
    if not values:
        return mark_safe('<p class="muted">No samples.</p>')
    buckets = bins(list(values))
    tallest = max(n for _, _, n in buckets)
    bar = (WIDTH - 2 * PAD) / len(buckets)
    bars = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}" fill="currentColor" fill-opacity="0.6">'
        "<title>{}–{} {}: {}</title></rect>",
        [
            (
                f"{PAD + i * bar + 1:.1f}",
                f"{PAD / 2 + (HEIGHT - 1.5 * PAD) * (1 - n / tallest):.1f}",
                f"{bar - 2:.1f}",
                f"{(HEIGHT - 1.5 * PAD) * n / tallest:.1f}",
                low,
                high,
                unit,
                n,
            )
            for i, (low, high, n) in enumerate(buckets)
        ],
    )
    return format_html(
        '<svg class="loss-curve histogram" viewBox="0 0 {w} {h}" role="img" '
        'aria-label="{n} samples, {lo} to {hi} {unit}">'
        "{bars}"
        '<text x="2" y="{ytop}" class="axis">{tallest}</text>'
        '<text x="{x0}" y="{ybottom}" class="axis">{lo}</text>'
        '<text x="{x1}" y="{ybottom}" class="axis" text-anchor="end">{hi} {unit}</text></svg>',
        w=WIDTH,
        h=HEIGHT,
        n=len(values),
        lo=min(values),
        hi=max(values),
        unit=unit,
        bars=bars,
        tallest=tallest,
        ytop=PAD / 2 + 4,
        x0=PAD,
        x1=WIDTH - PAD,
        ybottom=HEIGHT - 4,
    )
