"""What an API token's scopes allow, and the admin's model permissions for API actions.

Scopes are enforced here, for every DRF view: TokenScope is a default permission
class, and views that set their own permission classes list it too. Which scope a
request needs:

- staff review actions (view names in REVIEW_ROUTES: approve / reject of a model version,
  a run's hyperparameters): "review";
- the chat API and the OpenAI-compatible completions (CHAT_ROUTES): "chat";
- any other GET, HEAD or OPTIONS: "read";
- any other write (adding sources, starting training, revoking tokens, deleting the
  account): only a token without scopes, or a signed-in session.
"""

from rest_framework.permissions import SAFE_METHODS, BasePermission

from .models import ApiToken

CHAT_ROUTES = {"api:chat", "openai-chat-completions"}
REVIEW_ROUTES = {
    "api:model-version-approve",
    "api:model-version-reject",
    "api:training-run-hyperparameters",
}


def required_scope(request) -> str | None:
    """The scope a request needs, or None for a write that only a full-access token may make."""
    match = request.resolver_match
    view_name = match.view_name if match else ""
    if view_name in REVIEW_ROUTES:
        return ApiToken.Scope.REVIEW
    if view_name in CHAT_ROUTES:
        return ApiToken.Scope.CHAT
    if request.method in SAFE_METHODS:
        return ApiToken.Scope.READ
    return None


class TokenScope(BasePermission):
    """Refuses (403) a request that the caller's token scopes do not cover; sessions are unaffected."""

    def has_permission(self, request, view):
        token = request.auth
        if not isinstance(token, ApiToken) or not token.scopes:
            return True
        scope = required_scope(request)
        if scope is not None and token.allows(scope):
            return True
        granted = ", ".join(token.scopes)
        self.message = (
            f"This token's scopes ({granted}) do not allow this request; it needs the “{scope}” scope."
            if scope
            else f"This token's scopes ({granted}) allow no changes here; use a token without scopes."
        )
        return False


class HasModelPermission(BasePermission):
    """The Django model permission that the admin asks for the same change, e.g. `training.change_modelversion`.

    Subclass with `permission` set, or use `model_permission("app.codename")`.
    """

    permission = ""

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and user.is_active and user.has_perm(self.permission))


def model_permission(permission: str) -> type[HasModelPermission]:
    return type(f"Has_{permission.replace('.', '_')}", (HasModelPermission,), {"permission": permission})
