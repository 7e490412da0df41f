from django.urls import path

from . import views

urlpatterns = [
    path("documents/<int:document_id>/chunks/", views.document_chunks, name="document-chunks"),
    path("datasets/", views.datasets, name="datasets"),
    path("datasets/<int:dataset_id>/", views.dataset_detail, name="dataset-detail"),
    path("datasets/<int:dataset_id>/download/", views.dataset_download, name="dataset-download"),
    path("search/", views.search, name="search"),
]
