"""The naive baseline service for `citeqa bench`: FastAPI + sentence-transformers + FAISS, one
sync route, no tuning: what a user would otherwise write. Not part of citeqa's product."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel


class Ask(BaseModel):
    question: str
    k: int = 5


def build_app(corpus: Path, model_dir: Path) -> FastAPI:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import faiss
    from langchain_text_splitters import RecursiveCharacterTextSplitter
    from sentence_transformers import SentenceTransformer

    texts = [p.read_text(encoding="utf-8") for p in sorted(corpus.glob("*.txt"))]
    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)
    chunks = [c for text in texts for c in splitter.split_text(text)]
    model = SentenceTransformer(str(model_dir), device="cpu")
    vectors = model.encode(chunks, normalize_embeddings=True)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    app = FastAPI()

    @app.get("/readyz")
    def ready() -> dict[str, str]:
        return {"status": "ready"}

    @app.post("/ask")
    def ask(body: Ask) -> dict[str, Any]:
        query = model.encode([body.question], normalize_embeddings=True)
        scores, ids = index.search(query, body.k)
        return {"passages": [{"text": chunks[i], "score": float(s)} for i, s in zip(ids[0], scores[0], strict=True)]}

    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(build_app(args.corpus, args.model), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
