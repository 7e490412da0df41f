from django.urls import path

from . import audience_views, draft_views, shared_views, views, widget_views

urlpatterns = [
    path("chat/", views.chat_home, name="chat"),
    path("chat/send/", views.send, name="chat-send"),
    path("chat/<int:conversation_id>/", views.conversation, name="conversation"),
    path("chat/messages/<int:message_id>/stream/", views.stream, name="chat-stream"),
    path("chat/messages/<int:message_id>/revise/", views.revise, name="chat-revise"),
    path("twins/", shared_views.twin_list, name="shared-twins"),
    path("twins/<str:username>/chat/", shared_views.twin_chat, name="twin-chat"),
    path("twins/<str:username>/chat/<int:conversation_id>/", shared_views.twin_chat, name="twin-conversation"),
    path("twins/<str:username>/chat/send/", shared_views.twin_send, name="twin-chat-send"),
    path(
        "twins/<str:username>/chat/messages/<int:message_id>/stream/", shared_views.twin_stream, name="twin-chat-stream"
    ),
    path("audience/", audience_views.audience_home, name="audience"),
    path("audience/conversations/<int:conversation_id>/", audience_views.conversation, name="audience-conversation"),
    path("audience/answers/<int:message_id>/revise/", audience_views.revise, name="audience-revise"),
    path("audience/unanswered/", audience_views.unanswered_page, name="audience-unanswered"),
    path("write/", draft_views.write, name="write"),
    path("drafts/", draft_views.draft_list, name="drafts"),
    path("drafts/<int:draft_id>/", draft_views.draft, name="draft"),
    path("drafts/<int:draft_id>/edit/", draft_views.edit, name="draft-edit"),
    path("drafts/<int:draft_id>/regenerate/", draft_views.regenerate, name="draft-regenerate"),
    path("drafts/<int:draft_id>/export.md", draft_views.export, name="draft-export"),
    path("drafts/<int:draft_id>/delete/", draft_views.delete, name="draft-delete"),
    # A published twin's visitors: no account, no cookie (chat/widget_views.py)
    path("t/<slug:slug>/", widget_views.public_page, name="public-twin"),
    path("widget/<str:widget_key>/ask/", widget_views.ask, name="widget-ask"),
    path("widget/<str:widget_key>/conversation/", widget_views.conversation, name="widget-conversation"),
    path("widget/<str:widget_key>/messages/<int:message_id>/stream/", widget_views.stream, name="widget-stream"),
]
