"""Users, their twin profile and their API tokens.

Everything a user owns elsewhere (sources, chunks, adapters, conversations) points
at the user with an `owner` foreign key; this app is upstream of all of them.
"""

import hashlib
import secrets

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone

from core.ownership import OwnedQuerySet


class User(AbstractUser):
    """Django's user, ours from day one so fields can be added without a data migration."""


class Twin(models.Model):
    """The twin profile: one per user, the persona the model speaks as."""

    owner = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="twin")
    name = models.CharField(max_length=100, help_text="The name your twin speaks as.")
    auto_train = models.BooleanField(
        default=False,
        help_text="Train automatically when a new dataset version adds enough samples.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OwnedQuerySet.as_manager()

    def __str__(self):
        return f"{self.name} (twin of {self.owner})"


class ApiTokenQuerySet(OwnedQuerySet):
    def active(self):
        """Usable now: neither revoked nor past its expiry."""
        return self.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()), revoked_at__isnull=True)


def hash_token(raw: str) -> str:
    # Tokens carry 256 bits of randomness, so a plain SHA-256 is enough (no slow KDF needed).
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiToken(models.Model):
    """A revocable API token. Only its hash is stored; the raw value is shown once.

    A token without scopes may do whatever its owner may do through the API; one with
    scopes is limited to them (accounts.permissions.TokenScope), so a token handed to a
    chat client cannot delete sources. An expired token is refused like a revoked one.
    """

    PREFIX = "tw_"

    class Scope(models.TextChoices):
        READ = "read", "Read: GET requests"
        CHAT = "chat", "Chat: the chat API and OpenAI chat completions"
        REVIEW = "review", "Staff review: approve or reject model versions"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    key_prefix = models.CharField(max_length=12, help_text="First characters, to tell tokens apart.")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    scopes = ArrayField(
        models.CharField(max_length=10, choices=Scope.choices),
        default=list,
        blank=True,
        help_text="Empty: full access. Otherwise only what these scopes allow.",
    )
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: never expires.")

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.name} ({self.key_prefix}…)"

    @classmethod
    def issue(cls, owner, name: str, *, scopes=(), expires_at=None) -> tuple["ApiToken", str]:
        raw = cls.PREFIX + secrets.token_urlsafe(32)
        token = cls.objects.create(
            owner=owner,
            name=name,
            key_prefix=raw[:10],
            key_hash=hash_token(raw),
            scopes=sorted(set(scopes)),
            expires_at=expires_at,
        )
        return token, raw

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and not self.is_expired

    def allows(self, scope: str) -> bool:
        return not self.scopes or scope in self.scopes

    def get_scopes_display(self) -> str:
        labels = dict(self.Scope.choices)
        return ", ".join(labels[s].split(":")[0] for s in self.scopes) if self.scopes else "Full access"

    def revoke(self):
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked_at"])


# ---- Sharing: who besides the owner may talk to a twin (issue 21) ----
#
# The twin's owner stays the owner of every row an audience creates: an audience
# conversation is `chat.Conversation(owner=<twin owner>, asker=<invited user>)` or
# `(owner=<twin owner>, visitor=<widget visitor id>)`, so the owner reads it, the owner's
# quota pays for it, and serving uses the owner's adapter. Only the sources the owner marks
# `ingestion.Source.audience` may feed an audience answer, a citation or a search.


class AudienceGroup(models.Model):
    """A named set of invited people ("readers", "students"), to invite and revoke together."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="audience_groups")
    name = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OwnedQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="audience_group_unique_name")]

    def __str__(self):
        return self.name


class TwinAccessQuerySet(OwnedQuerySet):
    def active(self):
        return self.filter(revoked_at__isnull=True)


class TwinAccess(models.Model):
    """An invitation to chat with the owner's twin, by username or by email.

    `member` is the invited user; an invitation by email to someone without an account
    keeps `email` and gets its member when that address signs up. Revoking sets
    `revoked_at`; every request checks it, so it takes effect on the next one.
    """

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="twin_accesses")
    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="twin_invitations"
    )
    email = models.EmailField(blank=True)
    group = models.ForeignKey(AudienceGroup, null=True, blank=True, on_delete=models.SET_NULL, related_name="members")
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = TwinAccessQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "member"],
                condition=Q(revoked_at__isnull=True, member__isnull=False),
                name="twin_access_one_active_per_member",
            ),
            models.CheckConstraint(condition=~Q(member__isnull=True, email=""), name="twin_access_names_someone"),
        ]

    def __str__(self):
        return f"{self.member or self.email} → twin of {self.owner}"


class Publication(models.Model):
    """The owner's public page and embeddable "Ask my twin" widget.

    Visitors need no account. The widget authenticates with `widget_key`, a public,
    cookie-less identifier (it sits in the page's HTML); what protects the owner is the
    origin allow-list, per-visitor rate limits and the monthly answer quota.
    """

    owner = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="publication")
    enabled = models.BooleanField(default=False)
    slug = models.SlugField(max_length=60, unique=True, help_text="The public page lives at /t/<slug>/.")
    widget_key = models.CharField(max_length=64, unique=True)
    allowed_origins = ArrayField(
        models.CharField(max_length=200),
        default=list,
        blank=True,
        help_text="Sites that may embed the widget (https://blog.example). Empty: only this site's public page.",
    )
    monthly_quota = models.PositiveIntegerField(default=500, help_text="Visitor answers per calendar month.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OwnedQuerySet.as_manager()

    def __str__(self):
        return f"/t/{self.slug}/ ({'on' if self.enabled else 'off'})"

    @staticmethod
    def new_widget_key() -> str:
        return "tww_" + secrets.token_urlsafe(24)
