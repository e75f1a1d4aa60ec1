"""What the llama.cpp backend promises beyond the port's contract, on the embedded SmolLM2:
prompt prefixes evaluated once (the last prompt's, and with the RAM cache, earlier ones that
take turns with it), and the model unloaded when idle, loaded again on the next call; and how
the cores are split between chat and the memory agents."""

from __future__ import annotations

import time

import numpy as np
import pytest

from agents.llm import llamacpp
from agents.llm.llamacpp import LlamaCppModel
from agents.llm.port import Request, complete, messages

#: Two system prompts of ~150 tokens, as two memory agents' would be.
RULES_A = "You file facts. " + " ".join(f"Rule {i}: keep each fact short." for i in range(18))
RULES_B = "You file events. " + " ".join(f"Rule {i}: keep each event dated." for i in range(18))


def evaluated(model: LlamaCppModel, system: str, user: str) -> int:
    complete(model, Request(messages(system, user), max_tokens=2), timeout_s=300)
    assert model.last_prompt_eval is not None
    assert model.last_timings["prompt_tokens"] == model.last_prompt_eval
    assert model.last_timings["prompt_ms"] > 0
    return model.last_prompt_eval


@pytest.mark.real
def test_a_repeated_prefix_is_evaluated_once_even_when_prompts_take_turns() -> None:
    model = LlamaCppModel(n_ctx=1024, threads=1, prompt_cache_mb=64)
    try:
        first_a = evaluated(model, RULES_A, "Events: a walk.")
        first_b = evaluated(model, RULES_B, "Events: a call.")
        again_a = evaluated(model, RULES_A, "Events: a long meeting with Ana.")
        again_b = evaluated(model, RULES_B, "Events: lunch.")
    finally:
        model.close()
    assert first_a > 100 and first_b > 100
    # only the new user message (and the template around it) is evaluated
    assert again_a < first_a // 4 and again_b < first_b // 4


def test_the_prompt_cache_holds_its_states_to_its_capacity() -> None:
    """Each state llama-cpp-python saves carries n_batch rows of logits it never reads again,
    uncounted by its cache: the cache keeps one row and counts every byte it holds."""

    class State:  # what llama_cpp.LlamaState carries
        def __init__(self, n: int) -> None:
            self.llama_state_size = 1 << 20
            self.scores = np.ones((512, 4096), dtype=np.single)  # 8 MiB of logits
            self.input_ids = np.arange(n, dtype=np.intc)

    cache = llamacpp.prompt_cache(4 << 20)
    for n in range(1, 9):
        cache[tuple(range(n))] = State(n)
        assert cache.cache_size <= 4 << 20
    assert 1 < len(cache.cache_state) <= 4
    kept = next(iter(cache.cache_state.values()))
    assert kept.scores.shape == (1, 4096) and not kept.scores.any()
    assert tuple(range(8)) in cache  # the newest state is found by its prefix


@pytest.mark.real
def test_the_cached_prompt_states_keep_memory_flat() -> None:
    model = LlamaCppModel(n_ctx=1024, threads=1, prompt_cache_mb=64)
    try:
        for i in range(6):
            evaluated(model, RULES_A if i % 2 else RULES_B, f"Events: walk number {i}.")
        states = model.call(lambda llama: list(llama.cache.cache_state.values()))
    finally:
        model.close()
    assert states and all(s.scores.nbytes < 1 << 20 for s in states)


@pytest.mark.real
def test_an_idle_model_is_unloaded_and_loaded_again_on_the_next_call() -> None:
    model = LlamaCppModel(n_ctx=512, threads=1, idle_unload_s=0.3)
    try:
        say = Request(messages("Be brief.", "Say hi."), max_tokens=4)
        assert complete(model, say, timeout_s=300).strip()
        assert model.loaded and model.loads == 1
        deadline = time.monotonic() + 30
        while model.loaded:
            assert time.monotonic() < deadline, "the idle model was never unloaded"
            time.sleep(0.05)
        assert complete(model, say, timeout_s=300).strip()  # loaded again on demand
        assert model.loads == 2
        assert model.call(lambda llama: llama is not None)
    finally:
        model.close()


@pytest.mark.parametrize(
    ("cores", "agents", "chat"), [(1, 1, 1), (2, 1, 1), (4, 1, 3), (8, 2, 6), (32, 4, 8)]
)
def test_the_agents_get_one_thread_and_chat_the_cores_they_leave(
    monkeypatch: pytest.MonkeyPatch, cores: int, agents: int, chat: int
) -> None:
    monkeypatch.setattr(llamacpp, "_cores", lambda: cores)
    assert (llamacpp.agent_threads(), llamacpp.default_threads()) == (agents, chat)
