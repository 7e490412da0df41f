"""Continuous batching: the answers in flight decoded together, one forward pass per token for all.

A `Batcher` owns one base model (with its peft adapters) and a decoding thread. Each `Request` is
one answer: its prompt, its own logits processors (steering, copy guard) and stopping criteria,
its adapter ("__base__" for the base model alone) and its sampling. A request joins at a token
boundary: it is prefilled alone (its first token comes from that pass, as it would alone), then
its KV cache is left-padded into the batch's and it decodes with the others; a finished or
cancelled row leaves the batch at once. Rows keep their own positions (position ids counted
from their own first token) and an attention mask that hides the padding, so each row computes
what it would compute alone; every row's processors see its own unpadded ids, one row at a time.

Greedy rows give the same tokens as alone. Sampled rows draw from their own torch.Generator,
seeded from the request's seed, so a seed gives the same draft batched or alone.

Why left padding and one shared cache rather than a cache per row: the decode step is then one
forward call on [rows, 1] with peft's mixed-adapter batches (`adapter_names=[...]`), which is
where batching pays (the weights are read once per step for all rows).
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


class Batcher:
    """The decoding loop of one model. submit() from any thread; the loop runs in its own thread
    while there is work. `lock` is held for each forward pass: whoever changes the model's adapters
    (chat/llm.py) takes it too, so that no adapter is loaded or removed mid-step."""

    def __init__(self, model, *, max_rows: int = 16, lock=None):
        self.model = model
        self.max_rows = max_rows
        self.lock = lock or threading.Lock()
        self.waiting: queue.Queue[Request] = queue.Queue()
        self.rows: list[Request] = []
        self.cache = None
        self.mask = None  # [rows, cached length + 1]: 1 for a real token, 0 for padding
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
                self.rows, self.cache, self.mask = [], None, None

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
            except Exception as exc:
                logger.exception("prefill failed")
                request.finish(exc)
                continue
            if done:
                request.finish()
            else:
                self._join(request, out.past_key_values, mask)

    def _join(self, request: Request, cache, mask):
        if self.cache is None:
            self.rows, self.cache, self.mask = [request], cache, mask
            return
        have, new = self.mask.shape[1], mask.shape[1]
        width = max(have, new)
        for mine, theirs in zip(self.cache.layers, cache.layers, strict=True):
            mine.keys = torch.cat([_left_pad(mine.keys, width), _left_pad(theirs.keys, width)])
            mine.values = torch.cat([_left_pad(mine.values, width), _left_pad(theirs.values, width)])
        self.mask = torch.cat([_left_pad(self.mask, width, dim=1), _left_pad(mask, width, dim=1)])
        self.rows.append(request)

    def _step(self):
        """One token for every row; finished and cancelled rows leave."""
        rows = self.rows
        input_ids = torch.stack([row.ids[0, -1:] for row in rows])
        positions = torch.tensor([[row.ids.shape[1] - 1] for row in rows], device=input_ids.device)
        self.mask = torch.cat([self.mask, self.mask.new_ones((len(rows), 1))], dim=1)
        out = self._forward(input_ids, self.mask, positions, [row.adapter for row in rows], self.cache)
        self.cache = out.past_key_values
        logits = out.logits[:, -1].to(dtype=torch.float32, copy=True)
        keep = []
        for index, row in enumerate(rows):
            try:
                done = row.cancelled.is_set() or row.choose(logits[index : index + 1])
            except Exception as exc:  # this row's processors failed: it ends, the others go on
                logger.exception("decoding a row failed")
                row.finish(exc)
                continue
            if done:
                row.finish()
            else:
                keep.append(index)
        self.steps += 1
        if len(keep) < len(rows):
            self._leave(keep)

    def _leave(self, keep: list[int]):
        if not keep:
            self.rows, self.cache, self.mask = [], None, None
            return
        index = torch.tensor(keep, device=self.mask.device)
        self.rows = [self.rows[k] for k in keep]
        mask = self.mask.index_select(0, index)
        start = int((mask.sum(0) > 0).nonzero()[0])  # columns that are padding for every row left
        self.mask = mask[:, start:]
        for layer in self.cache.layers:
            layer.keys = layer.keys.index_select(0, index)[:, :, start:]
            layer.values = layer.values.index_select(0, index)[:, :, start:]


def _left_pad(tensor: torch.Tensor, width: int, dim: int = 2) -> torch.Tensor:
    missing = width - tensor.shape[dim]
    if missing <= 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = missing
    return torch.cat([tensor.new_zeros(shape), tensor], dim=dim)
