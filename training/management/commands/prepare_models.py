"""Prepare the packaged models once per machine (idempotent; `make setup` runs it)."""

import time

from django.conf import settings
from django.core.management.base import BaseCommand

from features import embeddings
from training import base_models
from training.models import BaseModel


class Command(BaseCommand):
    help = "Convert the packaged SmolLM2 into the model cache, check the embedding model, register the base model."

    def add_arguments(self, parser):
        parser.add_argument("--tiny", action="store_true", help="Also build the tiny random model used by tests.")

    def step(self, label, work):
        self.stdout.write(f"  {label}…", ending="")
        self.stdout.flush()
        started = time.perf_counter()
        result = work()
        self.stdout.write(f" done ({time.perf_counter() - started:.1f} s)")
        return result

    def handle(self, *args, tiny=False, **options):
        if settings.TWIN_BASE_MODEL == "smollm2" or tiny:
            self.step("SmolLM2-135M-Instruct (converted once from the packaged GGUF)", base_models.smollm2_dir)
        if tiny or settings.TWIN_BASE_MODEL == "tiny":
            self.step("tiny test model", base_models.tiny_dir)
        if settings.TWIN_EMBEDDING_MODEL == "packaged":
            self.step(
                "all-MiniLM-L6-v2 exported to ONNX Runtime (once)", lambda: embeddings.export_onnx(log=lambda _: None)
            )
        self.step("embedding model (all-MiniLM-L6-v2)", lambda: embeddings.get_model())
        base = BaseModel.default()
        self.stdout.write(f"  base model for new runs: {base.name} ({base.identifier})")
