from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from accounts import publication_api
from accounts.api import ApiTokenViewSet, delete_account, obtain_token
from accounts.sharing_api import GroupViewSet, InvitationViewSet
from chat import audience_api, openai_api
from chat.api import ConversationViewSet, chat
from chat.drafts_api import DraftViewSet, revise_answer
from features.api import DatasetVersionViewSet, search
from ingestion.api import DocumentViewSet, SourceViewSet
from ingestion.sharing_api import AudienceSourceViewSet
from training.api import ExperimentViewSet, ModelVersionViewSet, TrainingRunViewSet, dataset_preference

from . import dashboard, metrics, ops


# No `.json` twin of every route: JSON is the default (and `?format=` still picks a renderer),
# and the suffix routes passed a `format` argument that the viewsets' actions do not take (500).
class Router(DefaultRouter):
    include_format_suffixes = False


router = Router()
router.register("sources", SourceViewSet, basename="source")
router.register("documents", DocumentViewSet, basename="document")
router.register("datasets", DatasetVersionViewSet, basename="dataset")
router.register("training-runs", TrainingRunViewSet, basename="training-run")
router.register("models", ModelVersionViewSet, basename="model-version")
router.register("experiments", ExperimentViewSet, basename="experiment")
router.register("conversations", ConversationViewSet, basename="conversation")
router.register("drafts", DraftViewSet, basename="draft")
router.register("auth/tokens", ApiTokenViewSet, basename="api-token")
router.register("sharing/invitations", InvitationViewSet, basename="sharing-invitation")
router.register("sharing/groups", GroupViewSet, basename="sharing-group")
router.register("sharing/sources", AudienceSourceViewSet, basename="sharing-source")
router.register("audience/conversations", audience_api.AudienceConversationViewSet, basename="audience-conversation")

api_v1 = [
    path("auth/token/", obtain_token, name="token"),
    path("account/delete/", delete_account, name="account-delete"),
    path("search/", search, name="search"),
    path("chat/", chat, name="chat"),
    path("messages/<int:message_id>/revise/", revise_answer, name="message-revise"),
    path("audience/members/", audience_api.MemberList.as_view(), name="audience-members"),
    path("audience/revisions/", audience_api.RevisionList.as_view(), name="audience-revisions"),
    path("audience/unanswered/", audience_api.UnansweredList.as_view(), name="audience-unanswered"),
    path("sharing/publication/", publication_api.publication, name="publication"),
    path("sharing/publication/rotate-key/", publication_api.rotate_key, name="publication-rotate-key"),
    # Training's job on one of features' datasets: before the router, whose routes it extends.
    path("datasets/<int:id>/preference/", dataset_preference, name="dataset-preference"),
    *router.urls,
]

admin.site.site_header = "Twinsite administration"
admin.site.site_title = "Twinsite admin"

urlpatterns = [
    path("", dashboard.home, name="home"),
    path("dashboard/", dashboard.dashboard, name="dashboard"),
    path("", include("accounts.urls")),
    path("", include("ingestion.urls")),
    path("", include("features.urls")),
    path("", include("training.urls")),
    path("", include("chat.urls")),
    path("ops/", ops.ops, name="ops"),
    path("metrics", metrics.metrics, name="metrics"),  # Prometheus' default path
    path("admin/", admin.site.urls),
    path("api/v1/", include((api_v1, "api"))),  # namespaced: router names must not shadow page names
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("v1/chat/completions", openai_api.chat_completions, name="openai-chat-completions"),
]
