"""Learning from edits on the demo twin: 10 edited drafts make a DPO candidate, and the gate reports on it.

Through the app's own path, Celery eager, the packaged SmolLM2-135M on CPU: the demo corpus is
uploaded and the twin trained and approved (bench.grounding.train_and_approve: the default
CPU budget), then the twin writes a draft for each of the 10 briefs of bench/refinement/edits.json
(chat.actions.do_write) and the owner replaces it with their own version of it (do_edit_draft: the
owner's texts were written for this bench, in the demo author's voice, before any draft was seen).
do_start_refinement then trains DPO (the defaults for smollm2) from the approved adapter on those
10 corrections, and the evaluation gate compares its candidate with production.

Rows:
- log p(owner's text) - log p(twin's draft), mean over the 10 pairs, under the candidate vs
  under production (the DPO objective; it should rise);
- the share of pairs where the owner's version gained on the draft;
- the gate's figures, candidate vs production: held-out perplexity, style (Delta), similarity,
  copy rate, grounding; and its verdict.

.venv/bin/python -m bench.run_all --only refinement     # about 25 minutes on 2 cores
"""

import json

from . import common
from .common import info_row, log

EDITS = common.ROOT / "bench" / "refinement" / "edits.json"


def margins(version, pairs) -> list[float]:
    """log p(owner's text) - log p(twin's text) for each correction, under a model version's adapter."""
    from peft import PeftModel
    from transformers import AutoTokenizer

    from training import base_models
    from training.dpo import collate_pairs, encode_pair, pair_logps

    path = base_models.resolve(version.base_model.identifier)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = PeftModel.from_pretrained(common.load_base(path), str(version.adapter_dir)).eval()
    encoded = [encode_pair(tokenizer, pair, 512) for pair in pairs]
    logps = pair_logps(model, encoded, collate_pairs(tokenizer.pad_token_id), 2)
    return (logps[:, 0] - logps[:, 1]).tolist()


def run(quick: bool = False) -> dict:
    from django.conf import settings

    from accounts.actions import do_create_user
    from chat.actions import do_edit_draft, do_write
    from features.models import Correction
    from training.actions import do_start_refinement
    from twinsite.celery import app

    from .grounding import DEMO_DIR, make_twin, train_and_approve

    app.conf.task_always_eager = True
    settings.CELERY_TASK_ALWAYS_EAGER = True
    edits = json.loads(EDITS.read_text())
    if quick:
        settings.TWIN_TRAIN_MAX_STEPS = 10
    with common.scratch_database():
        staff = do_create_user("bench-staff", "bench-password-1", is_staff=True, is_superuser=True)
        owner = make_twin("robin", DEMO_DIR / "corpus")
        production = train_and_approve(owner, staff)
        examples = []
        for edit in edits:
            draft = do_write(owner, edit["brief"], form="free", length="short")
            draft.refresh_from_db()
            if draft.status != "done":
                raise RuntimeError(f"the draft for {edit['brief']!r} was not written: {draft.error}")
            examples.append({"brief": edit["brief"], "draft": draft.text, "edit": edit["edit"]})
            do_edit_draft(draft, edit["edit"])
        pairs = [c.as_pair() for c in Correction.objects.for_user(owner).order_by("pk")]
        log(f"{len(pairs)} corrections waiting; refining {production}")
        refinement, candidate, seconds = common.finished_version(lambda: do_start_refinement(owner))
        log(f"DPO: {refinement.total_steps} steps in {seconds:.0f} s; gate {candidate.evaluation_status}")
        before, after = margins(production, pairs), margins(candidate, pairs)
        report = candidate.eval_report or {}
        models = report.get("models", {})
        cand, prod = models.get("candidate", {}), models.get("production", {})
        mean_before, mean_after = sum(before) / len(before), sum(after) / len(after)
        rows = [
            info_row(
                "owner's text over the twin's draft: log-prob margin, mean of 10",
                round(mean_after, 2),
                round(mean_before, 2),
                "nats",
                note=f"candidate vs production: {mean_after - mean_before:+.2f} (DPO should raise it)",
            ),
            info_row("pairs where the owner's text gained", sum(map(float.__gt__, after, before)), len(pairs), "pairs"),
            info_row("DPO run and its gate", round(seconds), refinement.total_steps, "s / steps"),
        ]
        for key in ("perplexity", "delta", "similarity", "copy_rate", "grounding"):
            if key in cand or key in prod:
                rows.append(info_row(f"gate: {key}", cand.get(key), prod.get(key), "candidate / production"))
        checks = "; ".join(f"{c['metric']} {'ok' if c['passed'] else 'FAIL'}" for c in report.get("checks", []))
        verdict = "passed" if report.get("passed") else "not passed"
        rows.append(info_row(f"gate verdict: {verdict} ({checks})", None, None, ""))
    return {"name": "refinement", "rows": rows, "examples": examples, "margins": {"before": before, "after": after}}
