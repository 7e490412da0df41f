"""The owner's public page and widget (accounts.Publication): settings, the key, who may embed it.

The widget key is public (it sits in the embedding page's HTML); rotating it ends every
embedding at once. Origins are compared exactly, as a browser sends them in `Origin`
(scheme://host[:port], no path): an allow-list, never a pattern.
"""

from urllib.parse import urlsplit

from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.text import slugify

from .models import Publication

MAX_ORIGINS = 20


class PublicationRefused(ValueError):
    """A setting the owner cannot have; the message says why."""


def do_ensure_publication(owner) -> Publication:
    """The owner's publication, created unpublished (a free slug from the username, a fresh key)."""
    publication = Publication.objects.for_user(owner).first()
    if publication is not None:
        return publication
    base = slugify(owner.username)[:50] or "twin"
    for attempt in range(100):
        slug = base if attempt == 0 else f"{base}-{attempt + 1}"
        try:
            with transaction.atomic():
                return Publication.objects.create(owner=owner, slug=slug, widget_key=Publication.new_widget_key())
        except IntegrityError:
            existing = Publication.objects.for_user(owner).first()  # a concurrent request made it
            if existing is not None:
                return existing
    raise PublicationRefused("No free address for your public page; choose one.")


def normalize_origin(value: str) -> str:
    """'https://Blog.example/' -> 'https://blog.example'; PublicationRefused for anything but an origin."""
    value = (value or "").strip()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PublicationRefused(f"“{value}” is not a site's address: use https://your-blog.example.")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or "*" in value:
        raise PublicationRefused(f"“{value}” must be a site's origin only (scheme, host and port; no path).")
    try:
        port = parts.port
    except ValueError as exc:
        raise PublicationRefused(f"“{value}” has an invalid port.") from exc
    default = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{parts.hostname}" + (f":{port}" if port and port != default else "")


def normalize_origins(values) -> list[str]:
    origins = []
    for value in values:
        if value and value.strip() and (origin := normalize_origin(value)) not in origins:
            origins.append(origin)
    if len(origins) > MAX_ORIGINS:
        raise PublicationRefused(f"At most {MAX_ORIGINS} sites may embed the widget.")
    return origins


def do_update_publication(publication: Publication, **changes) -> Publication:
    """Change enabled, slug, allowed_origins or monthly_quota; takes effect on the next visitor request."""
    if "slug" in changes:
        slug = slugify(changes["slug"] or "")
        if not slug:
            raise PublicationRefused("Choose an address for your public page (letters, digits and dashes).")
        if Publication.objects.filter(slug=slug).exclude(pk=publication.pk).exists():
            raise PublicationRefused(f"/t/{slug}/ is taken; choose another address.")
        changes["slug"] = slug
    if "allowed_origins" in changes:
        changes["allowed_origins"] = normalize_origins(changes["allowed_origins"])
    for name, value in changes.items():
        setattr(publication, name, value)
    publication.save()
    return publication


def do_rotate_widget_key(publication: Publication) -> Publication:
    """A new key: every page embedding the old one stops working on its next request (open streams too)."""
    publication.widget_key = Publication.new_widget_key()
    publication.save(update_fields=["widget_key", "updated_at"])
    return publication


def site_origin(request) -> str:
    """This site's own origin, as a browser on its pages sends it (its public page may always use the widget)."""
    return f"{request.scheme}://{request.get_host()}"


def embed_snippet(publication: Publication, site_origin: str) -> str:
    """The HTML the owner pastes into their site."""
    return (
        f'<script src="{site_origin}/static/widget/twin-widget.js" '
        f'data-twin-key="{publication.widget_key}" async></script>'
    )


def origin_allowed(publication: Publication, origin: str | None, site_origin: str) -> bool:
    """May a browser page of this origin use the widget? No Origin header: not a cross-site browser
    request (a same-origin GET, or a client that is no browser, which CORS never restrains)."""
    if origin is None:
        return True
    return origin == site_origin or origin in publication.allowed_origins


def month_start(now=None):
    return timezone.localtime(now).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month_start(now=None):
    start = month_start(now)
    return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)


def visitor_answers_this_month(owner) -> int:
    """Visitor answers of the owner's twin this calendar month (the site's time zone), what
    monthly_quota counts; a failed one gave nothing and does not count. Through reverse relations:
    accounts imports no downstream app."""
    answers = Q(messages__role="assistant", messages__created_at__gte=month_start()) & ~Q(messages__status="failed")
    return owner.conversations.exclude(visitor="").aggregate(n=Count("messages", filter=answers))["n"]
