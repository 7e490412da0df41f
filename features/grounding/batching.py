"""Continuous batching: the answers in flight decoded together, one forward pass per token for all.

A `Batcher` owns one base model (with its peft adapters) and a decoding thread. Each `Request` is
one answer: its prompt, its own logits processors (steering, copy guard) and stopping criteria,
its adapter ("__base__" for the base model alone) and its sampling. A request joins at a token
boundary: it is prefilled alone (its first token comes from that pass, as it would alone), then
its KV cache goes into the batch's (rows.RowCache: left-padded, each row in its own slot) and it
decodes with the others; a finished or cancelled row leaves the batch at once. Rows keep their own
positions (position ids counted from their own first token) and an attention mask that hides the
padding, so each row computes what it would compute alone; every row's processors see its own
unpadded ids, one row at a time.

Greedy rows give the same tokens as alone. Sampled rows draw from their own torch.Generator,
seeded from the request's seed, so a seed gives the same draft batched or alone.

A decode step is one forward call on [rows, 1]: the weights are read once per step for all rows,
which is where batching pays. Each row's LoRA weights sit in a slot (rows.RowLora), so that the
adapters of all rows cost two batched matmuls a layer; peft's own mixed-adapter forward
(`adapter_names=[...]`, a pass per adapter) serves the prefill and the adapters RowLora cannot.
"""

import logging
import queue
import threading
from dataclasses import dataclass, field

import torch

logger = logging.getLogger(__name__)
BASE = "__base__"  # peft's name for "no adapter" in a mixed batch


@dataclass(eq=False)
class Request:
    """One answer to decode. `streamer` receives each new token (a 1-element tensor), then end()."""

    prompt_ids: torch.Tensor  # [1, prompt length]
    processors: list
    stopping: list
    max_new_tokens: int
    eos_ids: frozenset
    streamer: object
    adapter: str | None = None  # a peft adapter's name, BASE, or None: the model as it is
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    seed: int | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)
    failure: BaseException | None = None
    output: torch.Tensor | None = None  # [1, prompt + generated], once finished

    def __post_init__(self):
        self.ids = self.prompt_ids
        self.prompt_length = self.prompt_ids.shape[1]
        self.warpers = []
        if self.temperature > 0:
            from transformers import TemperatureLogitsWarper, TopPLogitsWarper

            self.warpers.append(TemperatureLogitsWarper(self.temperature))
            if self.top_p < 1.0:
                self.warpers.append(TopPLogitsWarper(self.top_p))
            self.generator = torch.Generator(device=self.prompt_ids.device)
            if self.seed is not None:
                self.generator.manual_seed(self.seed)
            else:
                self.generator.seed()

    @property
    def generated(self) -> int:
        return self.ids.shape[1] - self.prompt_length

    @property
    def new_tokens(self) -> torch.Tensor:
        return self.ids[0, self.prompt_length :]

    def choose(self, logits: torch.Tensor) -> bool:
        """Pick the next token from this row's logits ([1, vocab], float32); True when the row is done."""
        scores = self.processors(self.ids, logits) if self.processors else logits
        for warper in self.warpers:
            scores = warper(self.ids, scores)
        if self.warpers:
            token = torch.multinomial(torch.softmax(scores, dim=-1), 1, generator=self.generator)[0]
        else:
            token = torch.argmax(scores, dim=-1)
        self.ids = torch.cat([self.ids, token[:, None] if token.dim() == 1 else token.view(1, 1)], dim=-1)
        self.streamer.put(self.ids[0, -1:])
        return (
            int(self.ids[0, -1]) in self.eos_ids
            or self.generated >= self.max_new_tokens
            or any(bool(_as_bool(rule(self.ids, scores))) for rule in self.stopping)
        )

    def finish(self, failure: BaseException | None = None):
        self.failure = failure
        self.output = self.ids
        self.streamer.end()
        self.finished.set()


def _as_bool(value) -> bool:
    return bool(value.all()) if isinstance(value, torch.Tensor) else bool(value)


class FairLock:
    """A lock granted in the order it was asked for. The decoding loop takes the model's lock for every
    step and asks again at once: with threading.Lock it won almost every time, and a new question,
    which takes the lock to check its adapter (chat/llm.py), waited many steps for its first token."""

    def __init__(self):
        self._turns = threading.Condition(threading.Lock())
        self._next = self._serving = 0

    def acquire(self):
        with self._turns:
            ticket, self._next = self._next, self._next + 1
            self._turns.wait_for(lambda: self._serving == ticket)

    def release(self):
        with self._turns:
            self._serving += 1
            self._turns.notify_all()

    def locked(self) -> bool:
        return self._next != self._serving

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()


class Batcher:
    """The decoding loop of one model. submit() from any thread; the loop runs in its own thread
    while there is work. `lock` is held for each forward pass: whoever changes the model's adapters
    (chat/llm.py) takes it too, so that no adapter is loaded or removed mid-step."""

    def __init__(self, model, *, max_rows: int = 16, lock=None):
        self.model = model
        self.max_rows = max_rows
        self.lock = lock or FairLock()
        self.waiting: queue.Queue[Request] = queue.Queue()
        self.rows: list[Request] = []
        self.cache = None  # rows.RowCache: the rows' KV cache, row k in slot k
        self.lora = None  # rows.RowLora: the rows' LoRA weights, row k in slot k (None: peft's forward)
        self.thread: threading.Thread | None = None
        self.state = threading.Lock()  # starting and stopping the thread
        self.steps = 0

    def submit(self, request: Request) -> Request:
        with self.state:
            self.waiting.put(request)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="batcher", daemon=True)
                self.thread.start()
        return request

    def busy_rows(self) -> int:
        return len(self.rows) + self.waiting.qsize()

    def _run(self):
        while True:
            with self.state:
                if not self.rows and self.waiting.empty():
                    self.thread = None
                    return
            try:
                with self.lock, torch.inference_mode():
                    self._admit()
                    if self.rows:
                        self._step()
            except Exception as exc:  # the model failed: every row in it fails, the loop goes on
                logger.exception("batched decoding failed")
                for row in self.rows:
                    row.finish(exc)
                self.rows, self.cache, self.lora = [], None, None

    def _forward(self, input_ids, mask, positions, adapters, cache):
        from peft import PeftModel

        mixed = isinstance(self.model, PeftModel) and None not in adapters
        extra = {"adapter_names": adapters} if mixed else {}
        return self.model(
            input_ids=input_ids,
            attention_mask=mask,
            position_ids=positions,
            cache=cache,
            use_cache=True,
            logits_to_keep=1,
            **extra,
        )

    def _admit(self):
        """Prefill waiting requests (each alone, as it would run unbatched) and add them to the batch."""
        while len(self.rows) < self.max_rows:
            try:
                request = self.waiting.get_nowait()
            except queue.Empty:
                return
            if request.cancelled.is_set():
                request.finish()
                continue
            try:
                ids = request.prompt_ids
                mask = torch.ones_like(ids)
                positions = torch.arange(ids.shape[1], device=ids.device)[None]
                from transformers import DynamicCache

                out = self._forward(ids, mask, positions, [request.adapter], DynamicCache(config=self.model.config))
                done = request.choose(out.logits[:, -1].to(dtype=torch.float32, copy=True))
                if not done:
                    self._join(request, out.cache)
            except Exception as exc:
                logger.exception("prefill failed")
                request.finish(exc)
                continue
            if done:
                request.finish()

    def _join(self, request: Request, cache):
        from .rows import RowCache

        request.lora_name = self._lora_name(request.adapter)
        if self.cache is None:
            self.cache = RowCache(len(cache.layers))
        self._fit_lora(request)
        if self.lora is not None:
            self.lora.put(len(self.rows), request.lora_name)
        self.cache.join(cache)
        self.rows.append(request)

    def _lora_name(self, adapter: str | None) -> str | None:
        """The row's adapter by name; None: the model has no adapters, or several are active. A request's
        None means "the model as it is": its active adapter, or none while the caller disabled them."""
        from peft import PeftModel

        from .rows import lora_layers

        if not isinstance(self.model, PeftModel) or adapter is not None:
            return adapter
        layers = lora_layers(self.model)
        if not layers or layers[0].disable_adapters:
            return BASE
        active = self.model.active_adapters
        return active[0] if len(active) == 1 else None

    def _fit_lora(self, joining: Request):
        """The rows' LoRA weights in slots (rows.RowLora), or None: peft's own mixed-adapter forward
        when a row's adapter is not plain LoRA, or the LoRA layers changed (an adapter with other
        target modules loaded) and the slots are rebuilt for the rows in flight."""
        from .rows import RowLora, lora_layers

        names = [row.lora_name for row in [*self.rows, joining]]
        if None in names or not all(name == BASE or RowLora.supports(self.model, name) for name in names):
            self.lora = None
            return
        if self.lora is not None and self.lora.layers == lora_layers(self.model):
            return
        self.lora = RowLora(self.model)
        for slot, row in enumerate(self.rows):
            self.lora.put(slot, row.lora_name)

    def _step(self):
        """One token for every row; finished and cancelled rows leave."""
        rows = self.rows
        input_ids = torch.stack([row.ids[0, -1:] for row in rows])
        positions = torch.tensor([[row.ids.shape[1] - 1] for row in rows], device=input_ids.device)
        mask = self.cache.step_mask()
        if self.lora is not None:
            with self.lora.applied(len(rows)):
                out = self._forward(input_ids, mask, positions, [None], self.cache)
        else:
            out = self._forward(input_ids, mask, positions, [row.lora_name for row in rows], self.cache)
        self.cache.advance()
        logits = out.logits[:, -1].to(dtype=torch.float32, copy=True)
        gone = []
        for index, row in enumerate(rows):
            try:
                done = row.cancelled.is_set() or row.choose(logits[index : index + 1])
            except Exception as exc:  # this row's processors failed: it ends, the others go on
                logger.exception("decoding a row failed")
                row.finish(exc)
                gone.append(index)
                continue
            if done:
                row.finish()
                gone.append(index)
        self.steps += 1
        for index in reversed(gone):
            self._leave(index)

    def _leave(self, index: int):
        """Row `index` leaves: the last row takes its slot (in the cache, the LoRA slots and the list)."""
        last = len(self.rows) - 1
        self.cache.leave(index)
        if self.lora is not None and index != last:
            self.lora.move(last, index)
        self.rows[index] = self.rows[last]
        self.rows.pop()
        if not self.rows:
            self.cache, self.lora = None, None
