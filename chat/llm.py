"""Generation with a shared base model and each twin's own LoRA adapter.

One base model stays in memory per process; adapters are loaded onto it by name
(peft multi-adapter) and kept in a small LRU, so switching twins costs a
`set_adapter` (tens of ms) instead of a model load. A twin without a production
adapter is answered by the base model alone (adapters disabled).

Generation runs in the serving worker (queue "serve", chat/tasks.py), never in a web
request thread. The worker's threads each serve one answer, and all the answers in flight
are decoded together by one `Batcher` (features/grounding/batching.py): one forward pass per
token for up to TWIN_SERVE_BATCH rows, each row with its own twin's adapter (peft's
mixed-adapter batches) and its own steering or copy guard. `lock` is held for each forward
pass and for loading or removing an adapter; an adapter in use by a row is never evicted.

An adapter is checked against its registered sha256 before it is loaded. When its files
are missing or damaged, or peft cannot load them, the answer is made by the base model
and the Generation says why (`adapter_problem`): the twin keeps answering, with a notice.
"""

import logging
from collections import Counter, OrderedDict
from collections.abc import Iterator

from django.conf import settings

from features.grounding import generate
from features.grounding.batching import BASE, Batcher, FairLock
from features.grounding.config import GroundingConfig
from training import base_models

logger = logging.getLogger(__name__)
MAX_RESIDENT_ADAPTERS = 8


class AdapterUnavailable(Exception):
    """The production adapter cannot be used; the message says why, for the user."""


class TwinModels:
    def __init__(self):
        self.lock = FairLock()  # taken in turn: the decoding loop takes it for every step
        self.base_identifier = None
        self.model = None  # a PeftModel once the first adapter is loaded, else the base model
        self.tokenizer = None
        self.adapters: OrderedDict[str, str] = OrderedDict()  # adapter name -> sha256
        self.in_use: Counter[str] = Counter()  # adapter name -> rows decoding with it
        self.batcher: Batcher | None = None
        self.max_resident = MAX_RESIDENT_ADAPTERS  # idle adapters kept loaded (rows in use are never evicted)

    def _load_base(self, identifier: str):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if settings.TWIN_TORCH_THREADS:
            torch.set_num_threads(settings.TWIN_TORCH_THREADS)
        path = base_models.resolve(identifier)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).to(device).eval()
        self.base_identifier = identifier
        self.adapters.clear()
        self._new_batcher()

    def _new_batcher(self):
        """The batcher follows the model object (peft wraps the base model when the first adapter loads)."""
        if self.batcher is None:
            self.batcher = Batcher(self.model, max_rows=settings.TWIN_SERVE_BATCH, lock=self.lock)
        self.batcher.model = self.model

    def _use_adapter(self, model_version) -> bool:
        """Make the version's adapter active; False means "base model alone"."""
        if model_version is None:
            return False
        name = f"mv{model_version.pk}"
        if self.adapters.get(name) != model_version.sha256:
            if name in self.adapters:
                self.model.delete_adapter(name)
                del self.adapters[name]
            self._load_adapter(name, model_version)
            self.adapters[name] = model_version.sha256
        self.adapters.move_to_end(name)
        idle = [other for other in self.adapters if not self.in_use[other] and other != name]
        for evicted in idle[: max(0, len(self.adapters) - self.max_resident)]:  # oldest first
            del self.adapters[evicted]
            self.model.delete_adapter(evicted)
        return True

    def _load_adapter(self, name: str, model_version):
        """Load a verified adapter under `name`; AdapterUnavailable (and nothing loaded) otherwise."""
        from peft import PeftModel

        from training.lora import AdapterDamaged, verify_adapter_dir

        try:
            verify_adapter_dir(model_version.adapter_dir, model_version.sha256)
            if isinstance(self.model, PeftModel):
                self.model.load_adapter(str(model_version.adapter_dir), adapter_name=name)
            else:
                self.model = PeftModel.from_pretrained(self.model, str(model_version.adapter_dir), adapter_name=name)
                self._new_batcher()
        except AdapterDamaged as exc:
            raise AdapterUnavailable(str(exc)) from exc
        except Exception as exc:  # peft could not read what is there
            if not isinstance(self.model, PeftModel):
                self._load_base(self.base_identifier)  # peft may have wrapped its layers before failing
            elif name in self.model.peft_config:
                self.model.delete_adapter(name)
            raise AdapterUnavailable("its files could not be loaded") from exc

    def prepare(self, model_version=None):
        """Load what answering for this model version needs (also a warm-up)."""
        identifier = model_version.base_model.identifier if model_version else settings.TWIN_BASE_MODEL
        if self.model is None or identifier != self.base_identifier:
            if self.in_use:  # rows of another base model are decoding: one base per process
                raise AdapterUnavailable(f"this serving worker runs {self.base_identifier}, not {identifier}")
            self._load_base(identifier)
        return self._use_adapter(model_version)

    def serve(self, model_version, make_stream) -> Iterator[str]:
        """Load the version's adapter (the base model alone without one, or when it cannot load) and
        yield make_stream(model, tokenizer, adapter_problem=…, batcher=…, adapter=…)'s pieces: the
        answer is one row of the batch in flight. Returns its Generation. make_stream is one of
        features.grounding.generate's streams, the functions the gate measures too."""
        with self.lock:
            adapter_problem = ""
            try:
                use_adapter = self.prepare(model_version)
            except AdapterUnavailable as exc:
                # Reported (Sentry takes ERROR logs), and the base model answers instead of nothing.
                logger.error("adapter of model version %s unavailable: %s", model_version.pk, exc, exc_info=True)
                use_adapter, adapter_problem = False, str(exc)
            adapter = f"mv{model_version.pk}" if use_adapter else BASE
            self.in_use[adapter] += 1
        try:
            return (
                yield from make_stream(
                    self.model, self.tokenizer, adapter_problem=adapter_problem, batcher=self.batcher, adapter=adapter
                )
            )
        finally:
            with self.lock:
                self.in_use[adapter] -= 1
                if not self.in_use[adapter]:
                    del self.in_use[adapter]

    def stream(self, messages: list[dict], model_version=None, config=None, **kwargs) -> Iterator[str]:
        """Plain generation from a message list (ask mode unless mode= says otherwise)."""
        config = config or GroundingConfig.from_settings()

        def make(model, tokenizer, **more):
            return generate.stream_generation(model, tokenizer, messages, config, **kwargs, **more)

        return (yield from self.serve(model_version, make))


_models = TwinModels()


def get_models() -> TwinModels:
    return _models
