"""Conversations with a twin, and one prompt trace per generated answer."""

from django.conf import settings
from django.db import models

from core.ownership import OwnedQuerySet
from training.models import ModelVersion


class Conversation(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations")
    title = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OwnedQuerySet.as_manager()

    class Meta:
        ordering = ["-updated_at"]

    def __str__(self):
        return self.title


class MessageQuerySet(OwnedQuerySet):
    owner_lookup = "conversation__owner"  # a message is owned through its conversation


class Message(models.Model):
    class Role(models.TextChoices):
        USER = "user", "User"
        ASSISTANT = "assistant", "Twin"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        STREAMING = "streaming", "Streaming"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=16, choices=Role.choices)
    content = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DONE)
    error = models.TextField(blank=True)
    sources = models.JSONField(default=list, blank=True, help_text="The chunks the answer was grounded on.")
    grounding = models.JSONField(
        default=dict, blank=True, help_text="Each answer sentence checked against the notes, and an overall score."
    )
    model_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = MessageQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self):
        return f"{self.role}: {self.content[:60]}"

    @property
    def unsupported_sentences(self) -> int:
        return sum(s.get("supported") is False for s in (self.grounding or {}).get("sentences", []))

    @property
    def grounding_percent(self) -> int | None:
        score = (self.grounding or {}).get("score")
        return None if score is None else round(score * 100)


class PromptTrace(models.Model):
    """Everything needed to explain one answer: retrieval, the exact prompt, timings."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="prompt_traces")
    message = models.OneToOneField(Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="trace")
    question = models.TextField()
    retrieved = models.JSONField(default=list, help_text="[{chunk_id, score}] in rank order.")
    evidence = models.JSONField(
        default=list, help_text="[{text, chunk_id, similarity}]: the sentences put in the prompt."
    )
    prompt = models.TextField(blank=True, help_text="Empty when no note was close enough to ask the model.")
    grounding = models.JSONField(default=dict, help_text="The grounding check of the answer (chat/grounding.py).")
    answer = models.TextField()
    model_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    base_model = models.CharField(max_length=500)
    retrieval_ms = models.PositiveIntegerField(default=0)
    first_token_ms = models.PositiveIntegerField(default=0)
    generation_ms = models.PositiveIntegerField(default=0, help_text="From the start of generation to its end.")
    latency_ms = models.PositiveIntegerField(default=0)
    prompt_tokens = models.PositiveIntegerField(default=0)
    tokens_generated = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OwnedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"Trace {self.pk}: {self.question[:60]}"
