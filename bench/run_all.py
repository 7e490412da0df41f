"""Run the benchmarks in order and print one table of app-vs-baseline ratios.

.venv/bin/python -m bench.run_all                  # default sizes (about 10-15 min on 2 cores)
.venv/bin/python -m bench.run_all --quick          # small sizes (about 5 min)
.venv/bin/python -m bench.run_all --quick --only retrieval
"""

import argparse
import importlib
import json
import os
import sys
import time
import traceback

from . import common

BENCHMARKS = [
    "ingest",
    "chunking",
    "retrieval",
    "chat",
    "serving",
    "adapter_switch",
    "training",
    "grounding",
    "crawl",
    "fidelity",
    "writing",
    "refinement",
    "load",
]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: the whole suite in a few minutes")
    parser.add_argument("--only", action="append", choices=BENCHMARKS, metavar="NAME", help="repeatable")
    args = parser.parse_args(argv)
    selected = [name for name in BENCHMARKS if not args.only or name in args.only]

    common.setup_django()
    env = common.environment()
    print(
        f"Twinsite benchmarks ({'quick' if args.quick else 'default'} sizes): {', '.join(selected)}\n"
        f"  {env['cpus']} CPUs, torch {env['torch']} with {env['torch_threads']} threads, commit {env['commit']}",
        flush=True,
    )

    summary, failed = [], []
    for step, name in enumerate(selected, 1):
        print(f"[{step}/{len(selected)}] {name} ...", flush=True)
        module = importlib.import_module(f"bench.{name}")
        started, load_before = time.perf_counter(), _loadavg()
        try:
            result = module.run(quick=args.quick)
        except Exception:
            traceback.print_exc()
            failed.append(name)
            print(f"[{step}/{len(selected)}] {name} FAILED after {time.perf_counter() - started:.0f} s", flush=True)
            continue
        seconds = time.perf_counter() - started
        result.update(
            quick=args.quick,
            seconds=round(seconds, 1),
            environment={**env, "loadavg_before": load_before, "loadavg_after": _loadavg()},
        )
        path = common.write_result(result)
        for r in result["rows"]:
            summary.append({"benchmark": name, **r})
        load = result["environment"]
        print(
            f"[{step}/{len(selected)}] {name} done in {seconds:.0f} s (load {load['loadavg_before']} -> "
            f"{load['loadavg_after']}) -> {path.relative_to(common.ROOT)}",
            flush=True,
        )

    lines = common.table(summary, first_column="benchmark")
    print("\nratio = app cost / baseline cost (1.00: no overhead; above 1: the app is slower)\n")
    print("\n".join(lines))
    if failed:
        print(f"\nFAILED: {', '.join(failed)}")
    if not args.only:  # a partial run leaves the last full summary alone; its own files are written above
        _write_summary(summary, failed, env, args.quick, lines)
    return 1 if failed else 0


def _loadavg() -> float | None:
    """The 1-minute load average: above the CPU count, the figures are shared with others."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _write_summary(summary, failed, env, quick, lines):
    stem = common.result_stem("summary", quick)
    common.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    payload = {"environment": env, "quick": quick, "failed": failed, "rows": summary}
    (common.RESULTS_DIR / f"{stem}.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")
    header = [
        f"# Benchmark summary ({'quick' if quick else 'default'} sizes)",
        "",
        f"{env['when']}, commit {env['commit']}, {env['cpus']} CPUs, torch {env['torch']} "
        f"({env['torch_threads']} threads). Ratio = app cost / baseline cost, baseline measured in the same run.",
        "",
    ]
    footer = ["", f"Failed: {', '.join(failed)}", ""] if failed else [""]
    (common.RESULTS_DIR / f"{stem}.md").write_text("\n".join(header + lines + footer))


if __name__ == "__main__":
    sys.exit(main())
