"""The one owner-scoped path to a tenant's rows.

Every model a user owns has an `owner` foreign key and a QuerySet built on
OwnedQuerySet. Views, the API and retrieval go through `for_user`, which returns
nothing at all without a signed-in user, so a forgotten check fails closed.
"""

from django.db import models


class OwnedQuerySet(models.QuerySet):
    def for_user(self, user):
        if user is None or not getattr(user, "is_authenticated", False):
            return self.none()
        return self.filter(owner=user)
