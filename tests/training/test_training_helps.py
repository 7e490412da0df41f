"""Training does something: on a small corpus, the tiny model's adapter lowers the loss on held-out
documents against its base model, and its sampled generations differ from the base's for the same seed.

The held-out documents are text the run never saw: the same author on the same roof, in sentences
no training document has (held-out documents that reshuffled the training sentences would measure
memorisation, not the author). The run's own training sequences are checked to hold none of them.

No stubs: the real train_lora (style windows + Q&A, packing, Trainer, checkpoints) and the real
tiny Llama with the SmolLM2 tokenizer; the losses are measured here, independently of the trainer.
"""

import random

import pytest
import torch

from features.datasets import build_records
from training import lora
from training.base_models import resolve
from training.hyperparameters import defaults_for
from training.lora import collate, mean_loss, train_lora
from training.samples import DataSplit, text_windows

SENTENCES = [
    "I keep two hives on the flat roof of our building.",
    "The bees fly over the traffic and find linden trees in the park three streets away.",
    "In a good July each hive gives me about twelve kilograms of honey.",
    "The first winter I lost one colony to damp, not cold.",
    "I tilt each hive forward by two centimetres so that condensation runs out of the entrance.",
    "I check the weight of each hive by lifting the back edge every fortnight.",
    "Smoke calms the bees, but too much of it makes them angry and slow.",
    "My neighbours were afraid at first, and now they ask for honey every autumn.",
]
# The held-out documents' sentences: none of them is in a training document.
UNSEEN = [
    "Last spring a swarm settled in the chestnut tree behind the bakery, and I carried it home in a box.",
    "The wax I render in October goes into candles for my sister, who sells them at the Christmas market.",
    "Varroa mites are the real enemy, so I count them on a sticky board under the mesh floor.",
    "A queen lives for three or four years, and I mark mine with a dot of paint to know when she changes.",
    "On hot afternoons the foragers line up at the entrance and fan their wings to cool the brood.",
    "I feed sugar syrup only in September, when the heather has finished and the stores look thin.",
    "Our building manager asked me to move the hives once, until he tasted the honey.",
    "Drones are evicted at the end of summer, and the workers drag them out onto the gravel.",
]
HELDOUT_IDS = [9, 10]


def document(rng, sentences, doc_id) -> tuple[int, str, str]:
    paragraphs = [" ".join(rng.sample(sentences, 4)) for _ in range(4)]
    return doc_id, f"Notes from the roof {doc_id}", "\n\n".join(paragraphs)


def author_documents(seed=0) -> list[tuple[int, str, str]]:
    """Eight training documents from SENTENCES, then two held-out ones from UNSEEN."""
    rng = random.Random(seed)
    documents = [document(rng, SENTENCES, doc_id) for doc_id in range(1, 9)]
    return documents + [document(rng, UNSEEN, doc_id) for doc_id in HELDOUT_IDS]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    documents = author_documents()
    # The split is given, not drawn by id hash (training.samples.split_documents): the documents of
    # unseen text are the held-out ones. Their records are in the dataset all the same (answers,
    # and distractor contexts of the training documents' records): train_lora must leave them out.
    split = DataSplit(
        train_texts=[text for doc_id, _, text in documents if doc_id not in HELDOUT_IDS],
        heldout_texts=[text for doc_id, _, text in documents if doc_id in HELDOUT_IDS],
        heldout_document_ids=HELDOUT_IDS,
    )
    records = [r for r in build_records(documents) if r["kind"] == "style"]
    hp = defaults_for("tiny", epochs=8.0, max_steps=24, batch_size=2, max_seq_len=128, save_every=100)
    work = tmp_path_factory.mktemp("helps")
    built = []  # what the run trained on: the sequences train_lora built

    def spy(*args, **kwargs):
        built.append(real_build(*args, **kwargs))
        return built[-1]

    real_build = lora.build_training_data
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lora, "build_training_data", spy)
        result = train_lora(
            base_path=resolve("tiny"),
            split=split,
            # the style records: this test is about the author's words (tests/chat covers grounded answers)
            records=records,
            twin_name="Alice",
            hp=hp,
            work_dir=work / "run",
            adapter_dir=work / "adapter",
        )
    return result, split, records, built[0]


def test_the_held_out_documents_were_never_trained_on(trained):
    from transformers import AutoTokenizer

    result, _, records, data = trained
    assert result.eval_report["split"]["heldout_document_ids"] == HELDOUT_IDS
    assert result.eval_report["style_sequences"] >= 1 and result.eval_report["qa_sequences"] >= 1  # the mix
    # The dataset does hold held-out text (the held-out documents' own records; a writing sample's
    # background comes from its own document, and grounded distractors only from fact sentences)...
    assert any(r["document_id"] in HELDOUT_IDS for r in records)
    # ...and none of it reached a training sequence, while the training sentences all did.
    tokenizer = AutoTokenizer.from_pretrained(resolve("tiny"))
    trained_text = "\n".join(tokenizer.decode(s["input_ids"]) for s in data.sequences)
    assert [u for u in UNSEEN if u in trained_text] == []
    assert all(s in trained_text for s in SENTENCES)
    # What the run validated on is the unseen text.
    validated = "\n".join(tokenizer.decode(w["input_ids"]) for w in data.validation)
    assert all(u in validated for u in UNSEEN) and not any(s in validated for s in SENTENCES)


def test_the_adapter_lowers_held_out_loss_against_its_base(trained):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    result, split, _, _ = trained
    path = resolve("tiny")
    tokenizer = AutoTokenizer.from_pretrained(path)
    windows = text_windows(tokenizer, split.heldout_texts, 128)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(path), str(result.adapter_dir))

    adapter_loss = mean_loss(model, windows, tokenizer.pad_token_id, 4)
    with model.disable_adapter():
        base_loss = mean_loss(model, windows, tokenizer.pad_token_id, 4)

    # Text it never saw: the gain is the author's words and voice, not recall (x0.94 at this commit;
    # an adapter that learned nothing stays at x1.0, and it overfits past about 24 steps).
    assert adapter_loss < 0.96 * base_loss, (base_loss, adapter_loss)
    assert result.val_history[0][1] == pytest.approx(base_loss, rel=0.05)  # the run's own curve agrees
    assert result.val_history[-1][1] < result.val_history[0][1]


def test_its_generations_differ_from_the_bases_for_the_same_seed(trained):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    result, *_ = trained
    path = resolve("tiny")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(path), str(result.adapter_dir)).eval()
    prompt = tokenizer("I keep two hives", return_tensors="pt")

    def sample():
        torch.manual_seed(7)
        out = model.generate(**prompt, do_sample=True, max_new_tokens=16, pad_token_id=tokenizer.pad_token_id)
        return tokenizer.decode(out[0, prompt["input_ids"].shape[1] :])

    with model.disable_adapter():
        base_text, base_again = sample(), sample()
    adapter_text = sample()

    assert base_text == base_again  # the seed fixes the sample...
    assert adapter_text != base_text  # ...so the difference is the adapter's
    # ...and it leans toward the author's words: they are likelier under the adapter than the base
    # (a count of corpus words in 16 sampled tokens of a random model proved a coin toss).
    ids = tokenizer(" ".join(SENTENCES), return_tensors="pt")["input_ids"]
    with torch.no_grad():
        adapter_loss = model(input_ids=ids, labels=ids).loss.item()
        with model.disable_adapter():
            base_loss = model(input_ids=ids, labels=ids).loss.item()
    assert adapter_loss < base_loss


def test_packing_fills_sequences_and_keeps_answer_only_labels():
    from training.samples import IGNORE_INDEX, pack

    samples = [{"input_ids": [1] * 30, "labels": [IGNORE_INDEX] * 20 + [1] * 10} for _ in range(10)]
    packed = pack(samples, 128)

    assert sorted(len(s["input_ids"]) for s in packed) == [60, 120, 120]
    assert sum(label != IGNORE_INDEX for s in packed for label in s["labels"]) == 100
    batch = collate(0)(packed)
    assert batch["attention_mask"].sum().item() == 300


def test_packing_fills_gaps_with_shorter_samples():
    """In the samples' order, 100, 60, 100, 60, 28, 28 need four sequences of 128 (the 60s
    cannot join a 100); best fit needs three, and every answer token is still trained on."""
    from training.samples import IGNORE_INDEX, pack

    lengths = [100, 60, 100, 60, 28, 28]
    samples = [{"input_ids": [n] * n, "labels": [IGNORE_INDEX] * (n // 2) + [n] * (n - n // 2)} for n in lengths]
    packed = pack(samples, 128)

    assert sorted(len(s["input_ids"]) for s in packed) == [120, 128, 128]
    trained = sorted(label for s in packed for label in s["labels"] if label != IGNORE_INDEX)
    assert trained == sorted(n for n in lengths for _ in range(n - n // 2))
    assert all(len(s["input_ids"]) == len(s["labels"]) for s in packed)
