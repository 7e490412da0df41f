from django.urls import path

from . import views

urlpatterns = [
    path("chat/", views.chat_home, name="chat"),
    path("chat/send/", views.send, name="chat-send"),
    path("chat/<int:conversation_id>/", views.conversation, name="conversation"),
    path("chat/messages/<int:message_id>/stream/", views.stream, name="chat-stream"),
]
