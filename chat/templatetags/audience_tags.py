"""The audience page's charts: a value per day, drawn as the training page draws its loss curves
(inline SVG from training's own scale and axis helpers; no charting library, no JavaScript)."""

from django import template
from django.utils.html import format_html, format_html_join

from training.templatetags.training_tags import HEIGHT, OVERLAY_COLOURS, WIDTH, _axis_labels, _scale

register = template.Library()


@register.simple_tag
def day_chart(days, label, *series):
    """One line per series over the days of the window: `series` alternate a name and its
    [[day, value], ...] points (days without a value have no point; a lone point shows as a dot)."""
    named = [(series[i], list(series[i + 1])) for i in range(0, len(series) - 1, 2)]
    named = [(name, points) for name, points in named if points]
    if not days or not named:
        return format_html('<p class="muted">No {} yet.</p>', label)
    first = days[0]
    span = max((days[-1] - first).days, 1)
    shifted = [[[(day - first).days, value] for day, value in points] for _, points in named]
    xy, low, high = _scale(shifted, span)
    lines, dots, legend = [], [], []
    for i, ((name, points), xs) in enumerate(zip(named, shifted, strict=True)):
        colour = OVERLAY_COLOURS[i % len(OVERLAY_COLOURS)]
        lines.append((colour, " ".join(xy(x, y) for x, y in xs)))
        for (day, value), (x, y) in zip(points, xs, strict=True):
            dots.append((*xy(x, y).split(","), colour, day.isoformat(), name, value))
        legend.append((WIDTH - 4 - 110 * (len(named) - 1 - i), colour, name))
    return format_html(
        '<svg class="loss-curve day-chart" viewBox="0 0 {} {}" role="img" aria-label="{} per day">{}{}{}{}'
        '<text x="{}" y="{}" class="axis" text-anchor="middle">{} per day ({} – {})</text></svg>',
        WIDTH,
        HEIGHT,
        label,
        format_html_join("", '<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>', lines),
        format_html_join("", '<circle cx="{}" cy="{}" r="2.5" fill="{}"><title>{}: {} {}</title></circle>', dots),
        format_html_join("", '<text x="{}" y="12" class="axis" text-anchor="end" fill="{}">{}</text>', legend),
        _axis_labels(low, high),
        WIDTH / 2,
        HEIGHT - 4,
        label,
        first.isoformat(),
        days[-1].isoformat(),
    )
