from django.contrib import admin

from .models import CrawlRun, Document, Source


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "kind", "category", "created_at", "last_synced_at")
    list_filter = ("kind", "category")
    search_fields = ("name", "url", "owner__username")


@admin.register(CrawlRun)
class CrawlRunAdmin(admin.ModelAdmin):
    list_display = ("source", "owner", "status", "progress", "created_at", "finished_at")
    list_filter = ("status",)


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ("title", "owner", "category", "source", "fetched_at")
    list_filter = ("category",)
    search_fields = ("title", "url", "owner__username")
    readonly_fields = ("content_hash",)
