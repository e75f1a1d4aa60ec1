"""Settings of the chat model and the agents (the `llm` section of Settings)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.model_files import CATALOGUE


def http_url(value: str | None, field: str) -> str | None:
    """An http(s) URL setting; empty means unset."""
    if not value:
        return None
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"{field} must start with http:// or https://")
    return value


#: The default pairing, chosen by measurement (bench.chat and bench.ingest side by side, issue
#: 11): Qwen 1.5B answers (its answer F1 is the only one above SmolLM2's) and Qwen 0.5B keeps
#: the memory agents up with capture (2-3x the 1.5B's speed; a one-shot example per agent keeps
#: two people's facts apart). SmolLM2 stays the tiny choice that needs no set-up.
DEFAULT_CHAT_MODEL = "qwen-1.5b"
DEFAULT_AGENT_MODEL = "qwen-0.5b"
#: `agent_model` saying "the chat model's" (a word, not None: saved files leave None out).
SAME_AS_CHAT = "chat"


class LLMSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    #: The built-in model llama.cpp runs for chat (app.model_files.CATALOGUE: "qwen-1.5b",
    #: "qwen-0.5b", "smollm2", the tiny one that needs no set-up); scripts/setup.sh assembles
    #: the Qwen files.
    model: str = DEFAULT_CHAT_MODEL
    #: The built-in model the memory agents run; "chat" = the chat model's (a picked file or
    #: a server included). Different from the chat model or not, the agents get an instance
    #: of their own, with its own threads and prompt cache ("chat" and the same model as chat
    #: cost the same memory: on a CPU each instance holds its own repacked weights).
    agent_model: str = DEFAULT_AGENT_MODEL
    #: Any other GGUF file run by llama.cpp; when set it is used instead of `model`.
    model_path: Path | None = None
    #: http://host:port[/v1] of an OpenAI-compatible server (llama-server, Ollama, vLLM);
    #: when set it is used instead of llama.cpp in-process. Its API key, if it needs one, is
    #: read from the ENGRAM_OPENAI_API_KEY environment variable, never saved here.
    openai_base_url: str | None = None
    openai_model: str = "default"
    #: Minutes a model may sit idle before it is unloaded (loaded again on the next call);
    #: 0 keeps it loaded.
    unload_after_min: float = Field(default=10.0, ge=0, le=24 * 60)
    #: Memory for the agents' model's saved prompt states (llama.cpp's RAM cache), so the
    #: prompts that take turns (the meta manager's, each agent's) each reuse their prefix.
    prompt_cache_mb: int = Field(default=192, ge=0, le=16_384)
    #: Context window in tokens; prompts are trimmed to fit it.
    n_ctx: int = Field(default=4096, ge=512, le=262_144)
    #: Layers offloaded to the GPU: None = all when llama.cpp was built with GPU support,
    #: 0 = CPU only, -1 = all.
    n_gpu_layers: int | None = Field(default=None, ge=-1)
    #: CPU threads of the chat model; None = the cores the agents leave (at most 8).
    threads: int | None = Field(default=None, ge=1, le=256)
    #: CPU threads of the memory agents' model; None = 1 (a quarter of the cores on 8+).
    agent_threads: int | None = Field(default=None, ge=1, le=256)
    #: Tokens of memories in a chat prompt. Small by default: prompt evaluation is most of the
    #: time to first token on a CPU. Raise it for a bigger model or a GPU.
    chat_context_tokens: int = Field(default=256, ge=32, le=131_072)
    answer_tokens: int = Field(default=256, ge=16, le=8192)
    #: Events per memory-agent batch.
    memory_batch_size: int = Field(default=8, ge=1, le=128)
    #: Seconds one model call may take before it is abandoned (and the batch retried).
    call_timeout_s: float = Field(default=180.0, gt=0, le=3600)

    def agents_builtin(self) -> str | None:
        """The built-in model the memory agents run; None for a picked file or a server."""
        if self.openai_base_url:
            return None
        if self.agent_model != SAME_AS_CHAT:
            return self.agent_model
        return None if self.model_path else self.model

    def agents_bound_strings(self) -> bool:
        """Whether the agents' JSON grammars keep string bounds: a model not known to need
        them goes without; one not known at all keeps them (safe, a little slower)."""
        key = self.agents_builtin()
        return True if key is None else CATALOGUE[key].bound_strings

    @field_validator("model")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in CATALOGUE:
            raise ValueError(f"model must be one of {', '.join(CATALOGUE)}")
        return value

    @field_validator("agent_model")
    @classmethod
    def _known_or_chat(cls, value: str) -> str:
        if value != SAME_AS_CHAT and value not in CATALOGUE:
            raise ValueError(f"agent_model must be {SAME_AS_CHAT} or one of {', '.join(CATALOGUE)}")
        return value

    @field_validator("model_path")
    @classmethod
    def _gguf(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        if not value.is_file():
            raise ValueError(f"chat model file {value} does not exist")
        if value.suffix.lower() != ".gguf":
            raise ValueError(f"{value.name} is not a GGUF file (llama.cpp needs .gguf)")
        return value

    @field_validator("openai_base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        url = http_url(value, "openai_base_url")
        return url.rstrip("/") if url else None
