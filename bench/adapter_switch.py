"""Adapter handling in TwinModels against loading the base model from disk.

Baseline: `AutoModelForCausalLM.from_pretrained` of the packaged SmolLM2 (page
cache warm), the cost a process without shared adapters would pay per twin.
App, all through `TwinModels.prepare(version)` (what `stream` calls first):
- load: a version not resident yet (the first wraps the base in a PeftModel,
  later ones call `load_adapter`; past MAX_RESIDENT_ADAPTERS the oldest is
  evicted with `delete_adapter`);
- switch: alternate between two resident adapters (`set_adapter`);
- same twin again: prepare the version that is already active.
Loads and base loads are interleaved so both see the same background load.
"""

from . import common
from .common import log, median, percentile, row, timed


def run(quick: bool) -> dict:
    common.setup_django()
    from chat.llm import MAX_RESIDENT_ADAPTERS, TwinModels

    new_adapters, switches = (4, 20) if quick else (MAX_RESIDENT_ADAPTERS + 2, 40)
    params = {"adapters_loaded": new_adapters, "switches": switches, "max_resident": MAX_RESIDENT_ADAPTERS}

    path = common.base_model_path()
    root = common.data_dir() / "bench-adapters" / "switch"
    dirs = [root / f"v{i}" for i in range(new_adapters)]
    with timed() as t:
        common.make_random_adapters(path, dirs, seed=2)
    log(f"{new_adapters} random LoRA adapters saved in {t.seconds:.1f} s")
    versions = [common.adapter_version(100 + i, d) for i, d in enumerate(dirs)]

    common.load_base(path)  # first load in the process pays imports and lazy init; not counted
    models = TwinModels()
    models.prepare(None)

    base_loads, adapter_loads = [], []
    for version in versions:
        with timed() as t:
            common.load_base(path)
        base_loads.append(1000 * t.seconds)
        with timed() as t:
            models.prepare(version)
        adapter_loads.append({"ms": 1000 * t.seconds, "resident": len(models.adapters)})
    log(
        "loads (ms): base "
        + ", ".join(f"{x:.0f}" for x in base_loads)
        + "; adapter "
        + ", ".join(f"{x['ms']:.0f}" for x in adapter_loads)
    )

    a, b = versions[-2], versions[-1]
    switch_ms, same_ms, set_adapter_ms, disable_ms = [], [], [], []
    for i in range(switches):
        with timed() as t:
            models.prepare(a if i % 2 == 0 else b)
        switch_ms.append(1000 * t.seconds)
        target = a if i % 2 == 0 else b
        with timed() as t:
            models.prepare(target)
        same_ms.append(1000 * t.seconds)
        with timed() as t:
            models.model.set_adapter(f"mv{target.pk}")
        set_adapter_ms.append(1000 * t.seconds)
        with timed() as t, models.model.disable_adapter():
            pass
        disable_ms.append(1000 * t.seconds)

    first_load, later_loads = adapter_loads[0]["ms"], [x["ms"] for x in adapter_loads[1:]]
    base_median = median(base_loads)
    rows = [
        row("switch between resident adapters", median(switch_ms), base_median, "ms", note="prepare(A) / prepare(B)"),
        row("switch, p95", percentile(switch_ms, 95), base_median, "ms"),
        row("load a new adapter", median(later_loads), base_median, "ms", note="load_adapter path"),
        row("first adapter (wraps PeftModel)", first_load, base_median, "ms", note="1 sample"),
        row("same twin again (no switch)", median(same_ms), base_median, "ms"),
    ]
    notes = [
        f"Baseline from_pretrained: median {base_median:.0f} ms over {len(base_loads)} loads "
        f"({min(base_loads):.0f}-{max(base_loads):.0f} ms).",
        "Adapter loads in order (ms @ resident adapters after): "
        + ", ".join(f"{x['ms']:.0f}@{x['resident']}" for x in adapter_loads)
        + f"; MAX_RESIDENT_ADAPTERS is {MAX_RESIDENT_ADAPTERS}.",
        f"Bare peft set_adapter on the active adapter: median {median(set_adapter_ms):.1f} ms; "
        f"disable_adapter() enter + exit (a twin without a model): median {median(disable_ms):.1f} ms.",
    ]
    return {
        "name": "adapter_switch",
        "description": __doc__.strip().splitlines()[0],
        "params": params,
        "rows": rows,
        "notes": notes,
        "details": {
            "base_load_ms": base_loads,
            "adapter_loads": adapter_loads,
            "switch_ms": switch_ms,
            "same_ms": same_ms,
            "set_adapter_ms": set_adapter_ms,
            "disable_adapter_ms": disable_ms,
        },
    }
