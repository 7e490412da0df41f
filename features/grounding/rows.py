"""The per-row state of a decoding batch in preallocated slots: KV cache and LoRA weights.

Row k of the batch lives in slot k of every buffer. A row joins by copying its state into the next
free slot; a row leaves by moving the last slot's state into its own (one row's copy, not the whole
batch's). A decode step writes one column and reads views: nothing is concatenated per token.

Measured on SmolLM2-135M with the app's LoRA shape (r=16, all 7 projections), 8 rows on 8 adapters:
transformers' DynamicCache re-concatenated the whole KV cache every token (a fifth of the step) and
peft's mixed-adapter forward ran each adapter's sub-batch separately (8 x 210 small indexed matmuls
a step). Here each LoRA layer does two batched matmuls for all rows (`torch.bmm` over per-row A
and B), and peft only loads and holds the adapters.
"""

import contextlib

import torch
from transformers import Cache
from transformers.cache_utils import DynamicLayer

SPARE_COLUMNS = 64  # room added on each side when the buffers grow: a reallocation every 64 tokens at most


class RowCache(Cache):
    """The KV cache of the rows in flight: per layer a [slots, heads, capacity, dim] buffer; the rows
    are left-padded so that they all end at column `end` (the next token's), live columns are
    [start, end). `mask` marks each row's real tokens (0: its left padding)."""

    def __init__(self, layers: int):
        super().__init__(layers=[_RowLayer(self, index) for index in range(layers)])
        self.rows = 0
        self.start = self.end = 0
        self.buffers = None  # per layer (keys, values)
        self.mask = None  # [slots, capacity], long

    @property
    def width(self) -> int:
        return self.end - self.start

    def join(self, cache):
        """Add a prefilled one-row cache (a DynamicCache) as the last row."""
        pairs = [(layer.keys, layer.values) for layer in cache.layers]
        length = pairs[0][0].shape[2]
        if self.buffers is None:
            self._allocate(pairs[0][0], slots=1, capacity=length + 2 * SPARE_COLUMNS, end=length + SPARE_COLUMNS)
        self._ensure(before_end=length, after_end=1, slots=self.rows + 1)
        slot, begin = self.rows, self.end - length
        for (keys, values), (new_keys, new_values) in zip(self.buffers, pairs, strict=True):
            keys[slot, :, begin : self.end] = new_keys[0]
            values[slot, :, begin : self.end] = new_values[0]
        self.mask[slot] = 0
        self.mask[slot, begin : self.end] = 1
        self.start = min(self.start, begin) if self.rows else begin
        self.rows += 1

    def leave(self, slot: int):
        """Remove row `slot`: the last row moves into its slot (the caller moves its own row list alike)."""
        last = self.rows - 1
        if slot != last:
            live = slice(self.start, self.end)
            for keys, values in self.buffers:
                keys[slot, :, live] = keys[last, :, live]
                values[slot, :, live] = values[last, :, live]
            self.mask[slot, live] = self.mask[last, live]
        self.rows = last
        if self.rows:  # columns that are padding for every row left are dropped from the front
            used = self.mask[: self.rows, self.start : self.end].any(0).nonzero()
            self.start += int(used[0]) if len(used) else self.width
        else:
            self.start = self.end

    def step_mask(self) -> torch.Tensor:
        """Before a decode step: room for one more column, and the attention mask it is read with."""
        self._ensure(before_end=0, after_end=1, slots=self.rows)
        self.mask[: self.rows, self.end] = 1
        return self.mask[: self.rows, self.start : self.end + 1]

    def advance(self):
        """After a decode step: its column is part of the cache."""
        self.end += 1

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.width

    def _allocate(self, like: torch.Tensor, *, slots: int, capacity: int, end: int):
        shape = (slots, like.shape[1], capacity, like.shape[3])
        buffers = [(like.new_zeros(shape), like.new_zeros(shape)) for _ in self.layers]
        mask = torch.zeros((slots, capacity), dtype=torch.long, device=like.device)
        if self.buffers is not None and self.rows:
            old, new = slice(self.start, self.end), slice(end - self.width, end)
            for (keys, values), (old_keys, old_values) in zip(buffers, self.buffers, strict=True):
                keys[: self.rows, :, new] = old_keys[: self.rows, :, old]
                values[: self.rows, :, new] = old_values[: self.rows, :, old]
            mask[: self.rows, new] = self.mask[: self.rows, old]
        self.start, self.end = end - self.width, end
        self.buffers, self.mask = buffers, mask

    def _ensure(self, *, before_end: int, after_end: int, slots: int):
        capacity, have_slots = self.mask.shape[1], self.mask.shape[0]
        if self.end >= before_end and capacity - self.end >= after_end and have_slots >= slots:
            return
        end = max(before_end, self.width) + SPARE_COLUMNS
        slots = have_slots if slots <= have_slots else max(slots, 2 * have_slots)
        self._allocate(self.buffers[0][0], slots=slots, capacity=end + after_end + SPARE_COLUMNS, end=end)


class _RowLayer(DynamicLayer):
    """One layer's view of a RowCache: the step's keys and values go into column `end`."""

    def __init__(self, cache: RowCache, index: int):
        super().__init__()
        self.cache, self.index = cache, index
        self.is_initialized = True

    def update(self, key_states, value_states, *args, **kwargs):
        cache = self.cache
        keys, values = cache.buffers[self.index]
        keys[: cache.rows, :, cache.end] = key_states[:, :, 0]
        values[: cache.rows, :, cache.end] = value_states[:, :, 0]
        live = slice(cache.start, cache.end + 1)
        return keys[: cache.rows, :, live], values[: cache.rows, :, live]

    def get_seq_length(self) -> int:
        return self.cache.width

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.cache.width + query_length, 0


class RowLora:
    """Each row's LoRA weights for every LoRA layer of a peft model, in slots: per layer A [slots, in, r]
    and B [slots, r, out] (B times the adapter's scaling), zeros for a row whose adapter does not touch
    the layer or for "__base__". `applied()` makes the layers add x·A·B per row with two bmm calls."""

    def __init__(self, model, rank: int = 16):
        self.layers = lora_layers(model)
        self.rank = rank
        self.slots = 0
        self.buffers = None  # per layer (A, B)

    @staticmethod
    def supports(model, adapter: str) -> bool:
        """Plain LoRA on nn.Linear (no DoRA or other variant, no bias): what the bmm path computes."""
        from peft.tuners.lora.layer import Linear

        for layer in lora_layers(model):
            if adapter not in layer.lora_A:
                continue
            if type(layer) is not Linear or adapter in layer.lora_variant or layer.fan_in_fan_out:
                return False
            if layer.lora_B[adapter].bias is not None:
                return False
        return True

    def put(self, slot: int, adapter: str):
        """Copy `adapter`'s weights (none: "__base__") into `slot`."""
        ranks = [layer.r[adapter] for layer in self.layers if adapter in layer.lora_A]
        if self.buffers is None or slot >= self.slots or max(ranks, default=0) > self.rank:
            self._grow(max(slot + 1, 2 * self.slots), max([self.rank, *ranks]))
        for layer, (a, b) in zip(self.layers, self.buffers, strict=True):
            a[slot].zero_()
            b[slot].zero_()
            if adapter in layer.lora_A:
                r = layer.r[adapter]
                a[slot, :, :r] = layer.lora_A[adapter].weight.T
                b[slot, :r] = layer.lora_B[adapter].weight.T * layer.scaling[adapter]

    def move(self, source: int, target: int):
        for a, b in self.buffers:
            a[target] = a[source]
            b[target] = b[source]

    @contextlib.contextmanager
    def applied(self, rows: int):
        """While inside, each LoRA layer computes base(x) + x·A·B with the first `rows` slots' A and B
        (the model's own adapter state is left as it was)."""
        for layer, (a, b) in zip(self.layers, self.buffers, strict=True):
            layer.forward = _row_forward(layer.base_layer, a[:rows], b[:rows])
        try:
            yield
        finally:
            for layer in self.layers:
                del layer.forward

    def _grow(self, slots: int, rank: int):
        old, self.buffers = self.buffers, []
        for number, layer in enumerate(self.layers):
            weight = layer.base_layer.weight
            a = weight.new_zeros((slots, layer.in_features, rank))
            b = weight.new_zeros((slots, rank, layer.out_features))
            if old is not None:
                a[: self.slots, :, : self.rank] = old[number][0]
                b[: self.slots, : self.rank] = old[number][1]
            self.buffers.append((a, b))
        self.slots, self.rank = slots, rank


def _row_forward(base_layer, a, b):
    def forward(x, *args, **kwargs):
        kwargs.pop("adapter_names", None)
        result = base_layer(x, *args, **kwargs)
        return torch.baddbmm(result, torch.bmm(x, a), b)

    return forward


def lora_layers(model) -> list:
    """The model's LoRA layers, found once per set of loaded adapters: walking the modules of a model
    with 8 adapters took 14 ms, and every row that joined the batch walked them several times."""
    from peft.tuners.lora.layer import LoraLayer

    # Layers change only when adapters are loaded or removed: either changes the key (a loaded
    # adapter's config is a new object, and its target modules decide which layers it wraps).
    configs = getattr(model, "peft_config", {}).items()
    key = tuple((name, id(config), repr(getattr(config, "target_modules", None))) for name, config in configs)
    found = getattr(model, "_twin_lora_layers", None)
    if found is None or found[0] != key:
        found = (key, [module for module in model.modules() if isinstance(module, LoraLayer)])
        model._twin_lora_layers = found
    return found[1]
