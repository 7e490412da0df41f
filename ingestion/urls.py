from django.urls import path

from . import views

urlpatterns = [
    path("sources/", views.sources, name="sources"),
    path("sources/add/<slug:kind>/", views.add_source, name="add-source"),
    path("sources/<int:source_id>/", views.source_detail, name="source-detail"),
    path("sources/<int:source_id>/progress/", views.source_progress, name="source-progress"),
    path("sources/<int:source_id>/sync/", views.sync_source, name="sync-source"),
    path("sources/<int:source_id>/cancel/", views.cancel_sync, name="cancel-sync"),
    path("sources/<int:source_id>/reprocess/", views.reprocess_source, name="reprocess-source"),
    path("sources/<int:source_id>/audience/", views.source_audience, name="source-audience"),
    path("sources/<int:source_id>/delete/", views.delete_source, name="delete-source"),
    path("documents/<int:document_id>/", views.document_detail, name="document-detail"),
]
