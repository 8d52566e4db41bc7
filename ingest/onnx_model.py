"""Export the embedding model to ONNX once, at ingest, and serve query embeddings from it with
onnxruntime + tokenizers alone: no torch or sentence-transformers import in the service."""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np

from ingest.embedding import MODEL_NAME, l2_normalise
from ingest.errors import INGEST_EXTRA, MissingExtra
from ingest.index_store import ENCODER_DIR

MODEL_FILE = "model.onnx"
# Queries are encoded by an int8 copy: weights quantised per output channel to 7 bits, activations
# at run time. On every evaluation question its vectors keep cosine >= 0.98 with the float32 model's
# and it runs in less than half the CPU time. 7-bit weights (`reduce_range`) make the integer
# products exact on every x86-64 kernel: with 8-bit weights, CPUs without VNNI (AVX2 alone) sum
# u8 x s8 pairs into int16 with saturation, and the same question came out different (cosine
# 0.984-0.997 against an AVX-512 VNNI machine, every question; the FHS's answer@1 moved a
# question). With 7 bits, 312 of 319 questions were identical to 1e-5 under an emulated AVX2
# CPU (qemu -cpu EPYC-Rome), the rest within cosine 0.996 (float rounding in the other ops).
# Documents are embedded by the float32 model, once, at ingest.
QUERY_FILE = "model.int8.onnx"
QUERY_WEIGHTS = "int8, per channel, 7-bit weights"
TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "encoder.json"
LONE_AFTER_QUIET_S = 0.05
MAX_LENGTH = 256  # sentence-transformers' max_seq_length for all-MiniLM-L6-v2
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OPSET = 17
# An exported encoder: its folder, or its files in memory by name (a Ray actor's, sent by the driver:
# loaded from memory, an actor killed while loading leaves nothing on its machine's disk).
EncoderSource = Path | Mapping[str, bytes]


def encoder_file(source: EncoderSource, name: str) -> bytes:
    return source[name] if isinstance(source, Mapping) else (source / name).read_bytes()


def encoder_config() -> dict[str, Any]:
    """encoder.json: what the service needs to encode like the model, and the opset exported to."""
    return {
        "model": MODEL_NAME,
        "pooling": "mean",
        "normalize": True,
        "max_length": MAX_LENGTH,
        "opset": OPSET,
        "query_file": QUERY_FILE,
        "query_weights": QUERY_WEIGHTS,
    }


def exported_encoder_entry() -> dict[str, Any]:
    """The manifest's `query_encoder` of an index whose encoder this code would export today."""
    return {"backend": "onnx", "dir": ENCODER_DIR, **encoder_config()}


def export_onnx(model_dir: Path, out_dir: Path) -> dict[str, Any]:
    """Write model.onnx (documents), its int8 copy (queries), the tokenizer and the pooling config.
    Export alone needs torch, transformers and onnx (the `ingest` extra); serving does not."""
    try:
        import torch
        from transformers import AutoModel
    except ImportError as exc:
        raise MissingExtra(f"exporting the ONNX query encoder needs torch and transformers: {INGEST_EXTRA}") from exc
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # no "Loading weights" bar

    class Encoder(torch.nn.Module):
        """Keyword arguments only: the transformers signature changes between versions."""

        def __init__(self) -> None:
            super().__init__()
            self.bert = AutoModel.from_pretrained(str(model_dir))

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    out_dir.mkdir(parents=True, exist_ok=True)
    model = Encoder()
    model.eval()
    sample = {name: torch.ones((1, 8), dtype=torch.int64) for name in INPUTS}
    dynamic = {name: {0: "batch", 1: "tokens"} for name in INPUTS}
    with torch.no_grad(), warnings.catch_warnings():  # the tracer's warnings say nothing to a user
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (sample["input_ids"], sample["attention_mask"], sample["token_type_ids"]),
            str(out_dir / MODEL_FILE),
            input_names=list(INPUTS),
            output_names=["last_hidden_state"],
            dynamic_axes={**dynamic, "last_hidden_state": {0: "batch", 1: "tokens"}},
            opset_version=OPSET,
            dynamo=False,
        )
    quantize_for_queries(out_dir / MODEL_FILE, out_dir / QUERY_FILE)
    shutil.copyfile(model_dir / TOKENIZER_FILE, out_dir / TOKENIZER_FILE)
    config = encoder_config()
    (out_dir / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return config


def quantize_for_queries(model: Path, out: Path) -> None:
    """The int8 query encoder: MatMul and embedding weights quantised per channel, to 7 bits so that
    every CPU computes the same integer products (see QUERY_WEIGHTS). The quantiser
    configures the root logger (`basicConfig` at import, at INFO, and through `logging.warning`),
    which would print every library's debug lines from then on: the root logger is put back."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        root.setLevel(logging.ERROR)  # its one warning is a pre-processing hint, not the user's concern
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(model), str(out), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


class OnnxEmbedder:
    """Query (and document) embeddings from the exported model; mean pooling, L2-normalised.
    Recent query embeddings are kept in a small LRU cache."""

    name = MODEL_NAME

    def __init__(
        self,
        model_dir: EncoderSource,
        weights_sha256: str,
        threads: int = 1,
        model_file: str = MODEL_FILE,
        cache_size: int = 1024,
        spin: bool = False,
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        config = json.loads(encoder_file(model_dir, CONFIG_FILE))
        self.weights_sha256 = weights_sha256
        self._tokenizer = Tokenizer.from_str(encoder_file(model_dir, TOKENIZER_FILE).decode("utf-8"))
        self._tokenizer.enable_truncation(max_length=int(config["max_length"]))
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 - a token, not a secret
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Spinning threads answer sooner but burn a core while idle; `citeqa bench` measures both.
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        model = encoder_file(model_dir, model_file) if isinstance(model_dir, Mapping) else str(model_dir / model_file)
        self.model_file = model_file
        self._session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        self._input_names = {i.name for i in self._session.get_inputs()}
        self.dimension = int(self._session.get_outputs()[0].shape[-1] or 384)
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self.encode_tokens(*self.tokenize(texts))

    def tokenize(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Token ids and attention mask, int64, padded on the right to the longest text."""
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.asarray([e.ids for e in encodings], dtype=np.int64)
        mask = np.asarray([e.attention_mask for e in encodings], dtype=np.int64)
        return ids, mask

    def encode_tokens(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Embeddings of a batch already tokenized and padded: int64 ids and attention mask."""
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self._session.run(None, {k: v for k, v in feeds.items() if k in self._input_names})[0]
        weights = mask.astype(np.float32)
        pooled = np.einsum("btd,bt->bd", hidden, weights) / np.maximum(weights.sum(axis=1, keepdims=True), 1e-9)
        return l2_normalise(pooled)

    def cached(self, text: str) -> np.ndarray | None:
        with self._cache_lock:
            vector = self._cache.get(text)
            if vector is not None:
                self._cache.move_to_end(text)
            return vector

    def remember(self, text: str, vector: np.ndarray) -> None:
        if self._cache_size <= 0:
            return
        with self._cache_lock:
            self._cache[text] = vector
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    def clear_cache(self) -> None:
        with self._cache_lock:
            self._cache.clear()

    def embed_query(self, text: str) -> np.ndarray:
        vector = self.cached(text)
        if vector is None:
            vector = self.embed_documents([text])[0]
            vector.setflags(write=False)
            self.remember(text, vector)
        return vector


class BatchingEmbedder:
    """Encodes concurrent queries on one encoder thread: callers wait while it runs whatever has
    queued, one query after another; nothing waits for a batch to fill. A lone caller (nobody
    else encoding or waiting) instead encodes its own query on a second session whose threads
    spin between calls: fastest for one client, and idle, so not spinning, under load, where
    spinning would take CPU from everything else (both measured by `citeqa bench`).

    Each query is a model run of its own, never padded into a batch with others: the int8
    query encoder quantizes its activations with one scale per run, so a query encoded beside
    others came out different (cosine 0.988-0.998 with itself alone) and the same question
    could rank passages differently under load. One run a query costs no more (1.68 ms a query
    against 1.80 in batches of 16, one thread, this machine)."""

    def __init__(self, batch_encoder: OnnxEmbedder, lone_encoder: OnnxEmbedder, max_batch: int = 32) -> None:
        self._encoder = batch_encoder
        self._lone = lone_encoder
        self.name = batch_encoder.name
        self.dimension = batch_encoder.dimension
        self.weights_sha256 = batch_encoder.weights_sha256
        self._max_batch = max_batch
        self._queue: list[tuple[str, Future[np.ndarray]]] = []
        self._ready = threading.Condition()
        self._busy = False  # a batch, or a lone caller, is being encoded
        self._callers = 0  # callers inside embed_query
        self._last_batch = 0.0  # when the encoder thread last finished a batch
        self.batches = 0  # batches run by the encoder thread, holding `encoded` queries
        self.encoded = 0
        self.lone = 0  # queries their lone caller encoded
        self._worker = threading.Thread(target=self._run, name="query-encoder", daemon=True)
        self._worker.start()

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        return self._encoder.embed_documents(texts)

    def clear_cache(self) -> None:
        self._encoder.clear_cache()

    def embed_query(self, text: str) -> np.ndarray:
        cached = self._encoder.cached(text)
        if cached is not None:
            return cached
        future: Future[np.ndarray] = Future()
        with self._ready:
            self._callers += 1
            # ...and no batch ran lately: under steady load the spinning session stays asleep.
            quiet = time.monotonic() - self._last_batch > LONE_AFTER_QUIET_S
            lone = self._callers == 1 and not self._busy and not self._queue and quiet
            if lone:
                self._busy = True
            else:
                self._queue.append((text, future))
                self._ready.notify_all()
        try:
            if not lone:
                return future.result()
            try:
                vector: np.ndarray = self._lone.embed_documents([text])[0]
            finally:
                with self._ready:
                    self._busy = False
                    self._ready.notify_all()
            self.lone += 1
            vector.setflags(write=False)
            self._encoder.remember(text, vector)
            return vector
        finally:
            with self._ready:
                self._callers -= 1

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._queue or self._busy:
                    self._ready.wait()
                batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
                self._busy = True
            results: list[np.ndarray | BaseException] = []
            try:
                for text, _ in batch:
                    try:
                        results.append(self._encoder.embed_documents([text])[0])
                    except Exception as exc:  # that caller gets the error; the thread lives on
                        results.append(exc)
            finally:
                with self._ready:
                    self._busy = False
                    self._last_batch = time.monotonic()
                    self._ready.notify_all()
            self.batches += 1
            self.encoded += len(batch)
            for (text, future), result in zip(batch, results, strict=True):
                if isinstance(result, BaseException):
                    future.set_exception(result)
                    continue
                result.setflags(write=False)
                self._encoder.remember(text, result)
                future.set_result(result)
