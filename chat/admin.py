from django.contrib import admin

from .models import Conversation, Message, PromptTrace


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    fields = ("role", "content", "status", "model_version", "created_at")
    readonly_fields = fields


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ("title", "owner", "created_at", "updated_at")
    search_fields = ("title", "owner__username")
    inlines = [MessageInline]


@admin.register(PromptTrace)
class PromptTraceAdmin(admin.ModelAdmin):
    list_display = (
        "question",
        "owner",
        "model_version",
        "grounding_score",
        "retrieval_ms",
        "first_token_ms",
        "latency_ms",
        "created_at",
    )
    search_fields = ("question", "owner__username")
    list_filter = ("cut_short",)  # answers the token budget ended: is TWIN_MAX_NEW_TOKENS too low?
    readonly_fields = [f.name for f in PromptTrace._meta.fields]

    @admin.display(description="grounded")
    def grounding_score(self, trace):
        if trace.grounding.get("no_notes"):
            return "no notes"
        score = trace.grounding.get("score")
        return "—" if score is None else f"{score:.0%}"

    def has_add_permission(self, request):
        return False
