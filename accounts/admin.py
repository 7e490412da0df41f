from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from .models import ApiToken, Twin, User

admin.site.register(User, UserAdmin)


@admin.register(Twin)
class TwinAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "auto_train", "created_at")
    search_fields = ("name", "owner__username")


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "key_prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("key_prefix", "key_hash", "created_at", "last_used_at")
    search_fields = ("name", "owner__username", "key_prefix")
