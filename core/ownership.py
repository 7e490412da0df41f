"""The one owner-scoped path to a tenant's rows.

Every model a user owns has a QuerySet built on OwnedQuerySet: views, the API,
tasks and retrieval go through `Model.objects.for_user(user)`, which returns
nothing at all without a signed-in user, so a forgotten check fails closed.
Domain verbs chain on it: `ModelVersion.objects.for_user(user).production()`,
`Chunk.objects.for_user(user).search(...)`.

A model owned through a parent (a chat message through its conversation) names
the path to its owner in `owner_lookup`.
"""

from django.db import models
from django.http import Http404
from django.shortcuts import get_object_or_404


class OwnedQuerySet(models.QuerySet):
    owner_lookup = "owner"

    def for_user(self, user):
        if user is None or not getattr(user, "is_authenticated", False):
            return self.none()
        return self.filter(**{self.owner_lookup: user})

    def get_or_404(self, pk):
        """The row with this id among the scoped ones, else Http404: also for an id that is not a
        whole number (a posted form field is free text; a malformed id is a 404, not a 500)."""
        if not str(pk).isdigit():
            raise Http404(f"No such {self.model._meta.verbose_name}.")
        return get_object_or_404(self, pk=int(pk))
