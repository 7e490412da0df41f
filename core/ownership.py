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


class OwnedQuerySet(models.QuerySet):
    owner_lookup = "owner"

    def for_user(self, user):
        if user is None or not getattr(user, "is_authenticated", False):
            return self.none()
        return self.filter(**{self.owner_lookup: user})
