from django.contrib import admin

from .models import Chunk, CleanDocument, DatasetVersion, FeatureRun


@admin.register(CleanDocument)
class CleanDocumentAdmin(admin.ModelAdmin):
    list_display = ("title", "owner", "category", "cleaned_at")
    search_fields = ("title", "owner__username")


@admin.register(Chunk)
class ChunkAdmin(admin.ModelAdmin):
    list_display = ("__str__", "owner", "token_count", "embedding_model")
    search_fields = ("text", "owner__username")
    exclude = ("embedding",)


@admin.register(DatasetVersion)
class DatasetVersionAdmin(admin.ModelAdmin):
    list_display = ("__str__", "owner", "train_count", "test_count", "document_count", "created_at")
    readonly_fields = ("sha256", "path", "lineage")


@admin.register(FeatureRun)
class FeatureRunAdmin(admin.ModelAdmin):
    list_display = ("id", "owner", "status", "progress", "chunks_written", "created_at")
    list_filter = ("status",)
