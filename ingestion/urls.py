from django.urls import path

from . import views

urlpatterns = [
    path("sources/", views.sources, name="sources"),
    path("sources/upload/", views.add_upload, name="add-upload"),
    path("sources/article/", views.add_article, name="add-article"),
    path("sources/<int:source_id>/", views.source_detail, name="source-detail"),
    path("sources/<int:source_id>/sync/", views.sync_source, name="sync-source"),
    path("sources/<int:source_id>/delete/", views.delete_source, name="delete-source"),
    path("documents/<int:document_id>/", views.document_detail, name="document-detail"),
]
