from django.urls import path

from . import views

urlpatterns = [
    path("training/", views.training_home, name="training"),
    path("training/runs/start/", views.start_run, name="start-training"),
    path("training/refine/", views.refine, name="refine"),
    path("training/runs/<int:run_id>/", views.run_detail, name="training-run"),
    path("training/runs/<int:run_id>/cancel/", views.cancel_run, name="cancel-training"),
    path("training/runs/<int:run_id>/retry/", views.retry_run, name="retry-training"),
    path("training/runs/<int:run_id>/hyperparameters/", views.tune_run, name="tune-training"),
    path("training/experiments/start/", views.start_experiment, name="start-experiment"),
    path("training/experiments/<int:experiment_id>/", views.experiment_detail, name="experiment"),
    path("models/<int:model_id>/", views.model_detail, name="model-detail"),
    path("datasets/<int:dataset_id>/preference/", views.build_preference, name="dataset-build-preference"),
]
