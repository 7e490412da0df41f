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
