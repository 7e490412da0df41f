"""Generation with a shared base model and each twin's own LoRA adapter.

One base model stays in memory per process; adapters are loaded onto it by name
(peft multi-adapter) and kept in a small LRU, so switching twins costs a
`set_adapter` (tens of ms) instead of a model load. A twin without a production
adapter is answered by the base model alone (adapters disabled).

Generation runs in the serving worker (queue "serve", chat/tasks.py), never in a web
request thread. It holds a lock: one answer at a time per process, which is what two
CPU cores can do anyway; run more serving workers to serve more at once.

An adapter is checked against its registered sha256 before it is loaded. When its files
are missing or damaged, or peft cannot load them, the answer is made by the base model
and the Generation says why (`adapter_problem`): the twin keeps answering, with a notice.
"""

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings

from training import base_models
from training.prompts import render_prompt

logger = logging.getLogger(__name__)
MAX_RESIDENT_ADAPTERS = 8
NOTE_BUDGET_MARGIN = 16  # tokens for the words around the copied notes ("I think", "Yes,")


class AdapterUnavailable(Exception):
    """The production adapter cannot be used; the message says why, for the user."""


@dataclass
class Generation:
    prompt: str
    prompt_tokens: int = 0
    text: str = ""
    tokens: int = 0
    first_token_ms: int = 0
    generation_ms: int = 0  # from the start of generation to its last token
    adapter_problem: str = ""  # why the base model answered instead of the adapter asked for
    cut_short: bool = False  # the token budget ended it, not the model or the sentence limit


class TwinModels:
    def __init__(self):
        self.lock = threading.Lock()
        self.base_identifier = None
        self.model = None  # a PeftModel once the first adapter is loaded, else the base model
        self.tokenizer = None
        self.adapters: OrderedDict[str, str] = OrderedDict()  # adapter name -> sha256

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
        while len(self.adapters) > MAX_RESIDENT_ADAPTERS:
            evicted, _ = self.adapters.popitem(last=False)
            self.model.delete_adapter(evicted)
        if self.model.active_adapter != name:  # set_adapter costs 10-15 ms even when nothing changes
            self.model.set_adapter(name)
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
            self._load_base(identifier)
        return self._use_adapter(model_version)

    def answer_budget(self, evidence) -> int:
        """TWIN_MAX_NEW_TOKENS, or room for the notes themselves (up to twice that): an answer
        that copies a 100-word first note runs out before the second one, which often holds the fact."""
        needed = len(self.tokenizer(" ".join(evidence), add_special_tokens=False)["input_ids"]) + NOTE_BUDGET_MARGIN
        return min(2 * settings.TWIN_MAX_NEW_TOKENS, max(settings.TWIN_MAX_NEW_TOKENS, needed))

    def stream(
        self,
        messages: list[dict],
        model_version=None,
        *,
        evidence: list[str] = (),
        max_new_tokens: int | None = None,
        max_sentences: int = 0,
    ) -> Iterator[str]:
        """Yield the answer's text piece by piece; the Generation is the return value.

        evidence: sentences the decoding favours (training/steering.py); max_sentences: stop
        after that many sentences (0: no limit).
        """
        import contextlib

        import torch
        from transformers import StoppingCriteria, TextIteratorStreamer

        from training.steering import steered_decoding  # torch is imported only where answers are made

        with self.lock:
            adapter_problem = ""
            try:
                use_adapter = self.prepare(model_version)
            except AdapterUnavailable as exc:
                # Reported (Sentry takes ERROR logs), and the base model answers instead of nothing.
                logger.error("adapter of model version %s unavailable: %s", model_version.pk, exc, exc_info=True)
                use_adapter, adapter_problem = False, str(exc)
            max_new_tokens = max_new_tokens or self.answer_budget(evidence)
            prompt = render_prompt(self.tokenizer, messages)
            inputs = self.tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(self.model.device)
            prompt_length = inputs["input_ids"].shape[1]
            streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=300)
            stop = threading.Event()

            class StopWhenAsked(StoppingCriteria):
                def __call__(self, input_ids, scores, **kwargs):
                    return stop.is_set()

            steering, stopping = steered_decoding(
                self.tokenizer,
                list(evidence),
                prompt_length,
                copy_bonus=settings.TWIN_COPY_BONUS,
                start_bonus=settings.TWIN_START_BONUS,
                max_sentences=max_sentences,
            )
            stopping.append(StopWhenAsked())

            failure = []

            def generate():
                adapter_off = contextlib.nullcontext() if use_adapter else _adapters_disabled(self.model)
                try:
                    with adapter_off, torch.inference_mode():
                        output = self.model.generate(
                            **inputs,
                            streamer=streamer,
                            max_new_tokens=max_new_tokens,
                            do_sample=False,
                            logits_processor=steering,
                            pad_token_id=self.tokenizer.pad_token_id,
                            stopping_criteria=stopping,
                        )
                    new = output[0, prompt_length:]
                    result.cut_short = len(new) >= max_new_tokens and int(new[-1]) != self.tokenizer.eos_token_id
                except Exception as exc:  # surfaced to the caller below
                    failure.append(exc)
                    streamer.end()

            result = Generation(prompt=prompt, prompt_tokens=prompt_length, adapter_problem=adapter_problem)
            started = time.perf_counter()
            worker = threading.Thread(target=generate, daemon=True)
            worker.start()
            try:
                for piece in streamer:
                    if not piece:
                        continue
                    if not result.text:
                        result.first_token_ms = int((time.perf_counter() - started) * 1000)
                    result.text += piece
                    yield piece
            finally:
                stop.set()  # the client went away, or we are done: free the lock promptly
                worker.join()
            result.generation_ms = int((time.perf_counter() - started) * 1000)
            if failure:
                raise failure[0]
            result.tokens = len(self.tokenizer(result.text, add_special_tokens=False)["input_ids"])
            return result


def _adapters_disabled(model):
    import contextlib

    from peft import PeftModel

    return model.disable_adapter() if isinstance(model, PeftModel) else contextlib.nullcontext()


_models = TwinModels()


def get_models() -> TwinModels:
    return _models
