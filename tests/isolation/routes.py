"""The isolation matrix: every route of the site (but the admin, see test_admin.py) with each
method it accepts, and what each identity must get from it.

Kinds of route:
- OBJECT: on one of the owner's objects (its id in the path or the body): the owner
  reaches it; another user, their token and staff get 404; nobody else changes anything.
- STAFF: staff review of the owner's object (approve, reject, roll back, tune): staff
  reach it, everybody else is refused, the owner too.
- MINE: no id; each caller acts on their own twin (lists, forms, chat): served to every
  signed-in caller, and nothing of the owner's changes or shows.
- PUBLIC: served to anyone (home, login, signup, the schema, a published twin's page).
- WIDGET: a published twin's widget (/widget/<key>/…), cookie-less: anyone may ask (the key is
  public), as a visitor of their own; only the visitor's own id reaches that visitor's conversation
  (VISITOR below: each identity sends its own id, the visitor identity that of the world's visitor).
- SHARED: the owner's twin as its audience reaches it (/twins/<username>/…, the chat APIs naming
  the twin): the owner and the invited user reach it, and the invited user's requests may add to
  the owner's rows (their conversation is the owner's); anybody else gets 404, anonymous is refused.

The invited identity gets what another user gets everywhere but on SHARED and WIDGET rows.

Anonymous callers of anything but PUBLIC are sent to log in (pages) or refused (API);
an API token opens no page. HEAD is a row of its own wherever GET is, with GET's rule;
OPTIONS is taken by no route (405).
"""

from dataclasses import dataclass, field, replace

OBJECT, STAFF, MINE, PUBLIC, SHARED, WIDGET = "object", "staff", "mine", "public", "shared", "widget"
# What an identity gets: a status code, a set of them, or one of these words.
OK = "ok"  # 2xx, or a redirect that is not to the login page
SERVED = "served"  # anything but a server error or a login redirect (a caller's own 400 is fine)
REFUSED = "refused"  # a page sends to the login page; the API answers 401 or 403

IDS_IN_BODY = {"conversation": "{conversation}"}
VISITOR = "<the caller's visitor id>"  # filled per identity (tests/isolation/conftest.py)


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # with {object} placeholders filled from a World
    kind: str
    data: dict = field(default_factory=dict)
    expect: dict = field(default_factory=dict)  # identity -> outcome, where a row differs from its kind's rule
    # A visitor's question is stored as the owner's row (an audience conversation): the row may add
    # to the owner's data, and must still show none of it.
    audience_writes: bool = False

    @property
    def is_api(self) -> bool:
        return self.path.startswith(("/api/", "/v1/"))

    def __str__(self):
        return f"{self.method.upper()} {self.path}" + (f" {self.data}" if self.data else "")

    def fill(self, world) -> tuple[str, dict]:
        def filled(key):
            found = getattr(world, key)
            return found if isinstance(found, str) else found.pk  # a twin is named by its owner's username

        def value(template):
            if isinstance(template, str) and "{" in template:
                return template.format(**{key: filled(key) for key in _placeholders(template)})
            return template

        return value(self.path), {key: value(item) for key, item in self.data.items()}

    def outcome(self, identity: str):
        if identity in self.expect:
            return self.expect[identity]
        if self.kind == PUBLIC:
            return SERVED
        if self.kind == WIDGET:
            return OK if identity == "visitor" else 404
        if identity == "owner":
            return 403 if self.kind == STAFF else OK
        if identity in ("anonymous", "visitor") or (identity == "other_token" and not self.is_api):
            return REFUSED  # a token opens no page
        if self.kind == SHARED:
            return OK if identity == "invited" else 404
        if self.kind == OBJECT:
            return 404
        if self.kind == STAFF:
            return OK if identity == "staff" else 403
        return SERVED

    def may_change_owner_data(self, identity: str) -> bool:
        """The owner's own requests count too, refused or not (a token's last use, a session's last login)."""
        return (
            identity == "owner"
            or (identity == "staff" and self.kind == STAFF)
            or (identity == "invited" and self.kind == SHARED)
        )


def _placeholders(template: str) -> list[str]:
    return [part.split("}", 1)[0] for part in template.split("{")[1:]]


STAFF_DECIDES = {"staff": {200, 400}}  # staff may be refused for a reason of the model's state, never a 404
NOT_STAFF_403 = {"owner": 403, "other": 403, "other_token": 403}  # staff act on their own twin here
ANYONE_OK = dict.fromkeys(
    ("other", "other_token", "anonymous", "staff", "invited", "visitor", "owner"), OK
)  # each their own

PAGES = [
    Route("get", "/", PUBLIC),
    Route("get", "/login/", PUBLIC),
    Route("post", "/login/", PUBLIC),  # no credentials: a wrong password from five identities would lock out
    Route("post", "/logout/", PUBLIC),
    Route("get", "/signup/", PUBLIC),
    Route("post", "/signup/", PUBLIC, {"username": ""}),
    Route("get", "/dashboard/", MINE),
    Route("get", "/account/twin/", MINE),
    Route("post", "/account/twin/", MINE, {"name": "Renamed"}),
    Route("get", "/account/delete/", MINE),
    # a wrong password: every identity must be refused the same way (the deletion itself: tests/accounts)
    Route("post", "/account/delete/", MINE, {"password": "not the password"}, expect={"owner": 400}),
    Route("get", "/account/tokens/", MINE),
    Route("post", "/account/tokens/", MINE, {"name": "sneaky"}),
    Route("post", "/account/tokens/{token}/revoke/", OBJECT),
    Route("get", "/sources/", MINE),
    Route("post", "/sources/add/upload/", MINE, {"category": "article"}, expect={"owner": 400}),
    Route("get", "/sources/{source}/", OBJECT),
    Route("get", "/sources/{source}/progress/", OBJECT),
    Route("post", "/sources/{source}/sync/", OBJECT),
    Route("post", "/sources/{source}/cancel/", OBJECT),
    Route("post", "/sources/{source}/reprocess/", OBJECT),
    Route("post", "/sources/{source}/delete/", OBJECT),
    Route("get", "/documents/{document}/", OBJECT),
    Route("get", "/documents/{document}/chunks/", OBJECT),
    Route("get", "/datasets/", MINE),
    Route("get", "/datasets/{dataset}/", OBJECT),
    Route("get", "/datasets/{dataset}/download/", OBJECT),
    Route("post", "/datasets/{dataset}/preference/", OBJECT),
    Route("get", "/search/", MINE, {"q": "honey linden"}),
    Route("get", "/training/", MINE),
    Route("post", "/training/runs/start/", MINE),
    Route("get", "/training/runs/{run}/", OBJECT),
    Route("post", "/training/runs/{run}/cancel/", OBJECT),
    Route("post", "/training/runs/{run}/retry/", OBJECT),
    Route("get", "/training/runs/{run}/hyperparameters/", STAFF),
    Route("post", "/training/runs/{run}/hyperparameters/", STAFF, {"hp-max_steps": "0"}),
    Route("get", "/training/experiments/{experiment}/", OBJECT),
    # staff sweep their own twin; nothing in the body, so the form refuses before anything starts
    Route("post", "/training/experiments/start/", MINE, expect={"owner": 403, "other": 403}),
    Route("get", "/models/{model_version}/", OBJECT),
    Route("get", "/chat/", MINE),
    Route("post", "/chat/send/", MINE, {"message": "Hello?"}),
    Route("post", "/chat/send/", OBJECT, {"message": "And in winter?", **IDS_IN_BODY}),
    Route("get", "/chat/{conversation}/", OBJECT),
    Route("get", "/chat/messages/{answer}/stream/", OBJECT),
    Route("post", "/chat/messages/{answer}/revise/", OBJECT, {"text": "My own answer."}),
    Route("post", "/training/refine/", MINE),
    Route("get", "/write/", MINE),
    Route("post", "/write/", MINE, {"brief": "a post about my bees", "format": "post", "length": "short"}),
    Route("get", "/drafts/", MINE),
    Route("get", "/drafts/{draft}/", OBJECT),
    Route("post", "/drafts/{draft}/edit/", OBJECT, {"text": "My own draft."}),
    Route("post", "/drafts/{draft}/regenerate/", OBJECT),
    Route("get", "/drafts/{draft}/export.md", OBJECT),
    Route("post", "/drafts/{draft}/delete/", OBJECT),
    Route("get", "/sharing/", MINE),
    Route("post", "/sharing/", MINE, {"who": ""}),  # refused with a message on the page
    Route("post", "/sharing/invitations/{invitation}/revoke/", OBJECT),
    Route("post", "/sharing/invitations/{invitation}/group/", OBJECT, {"group": ""}),
    Route("post", "/sharing/groups/add/", MINE, {"name": ""}),
    Route("post", "/sharing/groups/{group}/rename/", OBJECT, {"name": "fans"}),
    Route("post", "/sharing/groups/{group}/revoke/", OBJECT),
    Route("post", "/sharing/groups/{group}/delete/", OBJECT),
    Route("post", "/sources/{source}/audience/", OBJECT, {"audience": "on"}),
    Route("get", "/twins/", MINE),
    Route("get", "/twins/{audience}/chat/", SHARED),
    Route("get", "/twins/{audience}/chat/{audience_conversation}/", SHARED),
    Route("post", "/twins/{audience}/chat/send/", SHARED, {"message": "When do your beans flower?"}),
    Route(
        "post",
        "/twins/{audience}/chat/send/",
        SHARED,
        {"message": "And the beans?", "conversation": "{audience_conversation}"},
        expect={"owner": 404},  # the owner continues no invited user's conversation
    ),
    Route("get", "/twins/{audience}/chat/messages/{audience_answer}/stream/", SHARED, expect={"owner": 404}),
    Route("get", "/audience/", MINE),
    Route("get", "/audience/conversations/{unanswered_conversation}/", OBJECT),
    Route("post", "/audience/answers/{unanswered_answer}/revise/", OBJECT, {"text": "My own answer."}),
    Route("get", "/audience/unanswered/", MINE),
    Route("get", "/sharing/publication/", MINE),
    Route("post", "/sharing/publication/", MINE, {"slug": "", "monthly_quota": "1"}, expect={"owner": 400}),
    Route("post", "/sharing/publication/rotate-key/", MINE),
    Route("get", "/t/{slug}/", PUBLIC),
    # Anyone may ask the published twin (as a visitor of their own); nobody else reads the visitor's answer.
    Route(
        "post",
        "/widget/{widget_key}/ask/",
        WIDGET,
        {"visitor": VISITOR, "message": "Do you sing?"},
        expect=dict.fromkeys(ANYONE_OK, 202),
        audience_writes=True,
    ),
    Route("get", "/widget/{widget_key}/conversation/", WIDGET, {"visitor": VISITOR}, expect=ANYONE_OK),
    Route("get", "/widget/{widget_key}/messages/{visitor_answer}/stream/", WIDGET, {"visitor": VISITOR}),
    Route("get", "/ops/", STAFF),  # site-wide aggregates for staff
    # Prometheus: staff or an allow-listed scraper (tests/ops/test_metrics.py); to anyone else no such page
    Route(
        "get",
        "/metrics",
        STAFF,
        expect=dict.fromkeys(("owner", "other", "other_token", "anonymous", "invited", "visitor"), 404),
    ),
]

API = [
    Route("post", "/api/v1/auth/token/", PUBLIC),
    Route("get", "/api/schema/", PUBLIC),
    Route("get", "/api/docs/", PUBLIC),
    Route("get", "/api/v1/", MINE),
    Route("post", "/api/v1/account/delete/", MINE, {"password": "not the password"}, expect={"owner": 400}),
    Route("get", "/api/v1/auth/tokens/", MINE),
    Route("get", "/api/v1/auth/tokens/{token}/", OBJECT),
    Route("post", "/api/v1/auth/tokens/{token}/revoke/", OBJECT),
    Route("get", "/api/v1/sources/", MINE),
    Route("post", "/api/v1/sources/", MINE, {"kind": "no-such-kind"}, expect={"owner": 400}),
    Route("get", "/api/v1/sources/{source}/", OBJECT),
    Route("delete", "/api/v1/sources/{source}/", OBJECT),
    Route("post", "/api/v1/sources/{source}/sync/", OBJECT),
    Route("post", "/api/v1/sources/{source}/cancel/", OBJECT, expect={"owner": 409}),  # no sync is running
    Route("post", "/api/v1/sources/{source}/reprocess/", OBJECT),
    Route("get", "/api/v1/documents/", MINE),
    Route("get", "/api/v1/documents/{document}/", OBJECT),
    Route("get", "/api/v1/datasets/", MINE),
    Route("get", "/api/v1/datasets/{dataset}/", OBJECT),
    Route("get", "/api/v1/datasets/{dataset}/preference/", OBJECT),
    Route("post", "/api/v1/datasets/{dataset}/preference/", OBJECT),
    Route("get", "/api/v1/search/", MINE, {"q": "honey linden"}),
    Route("get", "/api/v1/training-runs/", MINE),
    Route("post", "/api/v1/training-runs/", MINE),
    Route("post", "/api/v1/training-runs/", OBJECT, {"dataset_version": "{dataset}"}),
    Route("get", "/api/v1/training-runs/{run}/", OBJECT),
    # the run has finished, so staff are refused for its state (400), never for whose it is
    Route(
        "patch", "/api/v1/training-runs/{run}/hyperparameters/", STAFF, {"hyperparameters": {"seed": 7}}, STAFF_DECIDES
    ),
    Route("get", "/api/v1/experiments/", MINE),
    Route("get", "/api/v1/experiments/{experiment}/", OBJECT),
    Route("post", "/api/v1/experiments/", MINE, {"space": "not a dict"}, expect=NOT_STAFF_403),
    Route("get", "/api/v1/models/", MINE),
    Route("get", "/api/v1/models/{model_version}/", OBJECT),
    Route("get", "/api/v1/models/{model_version}/export/", OBJECT, expect={"staff": 200}),  # staff may export any
    Route("post", "/api/v1/models/{model_version}/approve/", STAFF, expect=STAFF_DECIDES),
    Route("post", "/api/v1/models/{model_version}/reject/", STAFF, expect=STAFF_DECIDES),
    Route("post", "/api/v1/models/{model_version}/rollback/", STAFF, expect=STAFF_DECIDES),
    Route("get", "/api/v1/conversations/", MINE),
    Route("get", "/api/v1/conversations/{conversation}/", OBJECT),
    Route("post", "/api/v1/chat/", MINE, {"message": "Hello?"}),
    Route("post", "/api/v1/chat/", OBJECT, {"message": "And in winter?", **IDS_IN_BODY}),
    Route("post", "/v1/chat/completions", MINE, {"messages": [{"role": "user", "content": "Hi"}]}),
    Route("post", "/api/v1/messages/{answer}/revise/", OBJECT, {"text": "My own answer."}),
    Route("post", "/api/v1/training-runs/refine/", MINE, expect={"owner": {201, 400}}),
    Route("get", "/api/v1/drafts/", MINE),
    Route("post", "/api/v1/drafts/", MINE, {"brief": "a post about my bees", "format": "post"}),
    Route("get", "/api/v1/drafts/{draft}/", OBJECT),
    Route("patch", "/api/v1/drafts/{draft}/", OBJECT, {"text": "My own draft."}),
    Route("post", "/api/v1/drafts/{draft}/regenerate/", OBJECT),
    Route("get", "/api/v1/drafts/{draft}/export/", OBJECT),
    Route("delete", "/api/v1/drafts/{draft}/", OBJECT),
    Route("get", "/api/v1/sharing/invitations/", MINE),
    Route("post", "/api/v1/sharing/invitations/", MINE, {"who": ""}, expect={"owner": 400}),
    Route("get", "/api/v1/sharing/invitations/{invitation}/", OBJECT),
    Route("patch", "/api/v1/sharing/invitations/{invitation}/", OBJECT, {"group": None}),
    Route("post", "/api/v1/sharing/invitations/{invitation}/revoke/", OBJECT),
    Route("get", "/api/v1/sharing/groups/", MINE),
    Route("post", "/api/v1/sharing/groups/", MINE, {"name": ""}, expect={"owner": 400}),
    Route("get", "/api/v1/sharing/groups/{group}/", OBJECT),
    Route("patch", "/api/v1/sharing/groups/{group}/", OBJECT, {"name": "fans"}),
    Route("delete", "/api/v1/sharing/groups/{group}/", OBJECT),
    Route("post", "/api/v1/sharing/groups/{group}/revoke/", OBJECT),
    Route("get", "/api/v1/sharing/sources/", MINE),
    Route("get", "/api/v1/sharing/sources/{source}/", OBJECT),
    Route("patch", "/api/v1/sharing/sources/{source}/", OBJECT, {"audience": True}),
    Route("post", "/api/v1/chat/", SHARED, {"message": "When do your beans flower?", "twin": "{audience}"}),
    Route("get", "/api/v1/conversations/", SHARED, {"twin": "{audience}"}),
    Route(
        "get",
        "/api/v1/conversations/{audience_conversation}/",
        SHARED,
        {"twin": "{audience}"},
        expect={"owner": 404},  # the owner's chat API has the owner's own conversations; /api/v1/audience/ the rest
    ),
    Route(
        "post",
        "/v1/chat/completions",
        SHARED,
        {"model": "twin:{audience}", "messages": [{"role": "user", "content": "When do your beans flower?"}]},
    ),
    Route("get", "/api/v1/audience/members/", MINE),
    Route("get", "/api/v1/audience/conversations/", MINE),
    Route("get", "/api/v1/audience/conversations/{unanswered_conversation}/", OBJECT),
    Route("get", "/api/v1/audience/revisions/", MINE),
    Route("post", "/api/v1/audience/revisions/", OBJECT, {"answer": "{unanswered_answer}", "text": "My own answer."}),
    Route("get", "/api/v1/audience/unanswered/", MINE),
    Route("get", "/api/v1/sharing/publication/", MINE),
    Route("put", "/api/v1/sharing/publication/", MINE, {"slug": ""}, expect={"owner": 400}),
    Route("patch", "/api/v1/sharing/publication/", MINE, {"monthly_quota": 3}),
    Route("post", "/api/v1/sharing/publication/rotate-key/", MINE),
]


# HEAD wherever GET is, answered as GET (without the body): the same identities reach it.
HEAD = [replace(row, method="head") for row in PAGES + API if row.method == "get"]

ROUTES = PAGES + API + HEAD
