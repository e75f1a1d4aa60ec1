"""`engram doctor`: what works on this machine and what does not, in words a person can act on.

Features register checks here (the store below; the chat model and capture add their own), so
one command reports everything and a missing engine is a line in a report, not a crash.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    summary: str
    details: dict[str, Any] = field(default_factory=dict)


Check = Callable[[], CheckResult]
CHECKS: list[Check] = []


def check(func: Check) -> Check:
    """Register a check; it must not raise (wrap failures in a CheckResult)."""
    CHECKS.append(func)
    return func


def run_checks(checks: list[Check] | None = None) -> list[CheckResult]:
    results = []
    for func in checks if checks is not None else CHECKS:
        try:
            results.append(func())
        except Exception as exc:  # a broken check is itself a finding
            results.append(CheckResult(func.__name__, False, f"check failed: {exc}"))
    return results


@check
def check_store() -> CheckResult:
    """Opens the store and runs one hybrid search, which loads the embedding model."""
    from app.runtime import Runtime
    from app.settings import load_settings

    with Runtime(load_settings()) as runtime:
        store = runtime.store()
        stats = store.stats()
        started = time.perf_counter()
        store.search("doctor check", k=1)
        search_ms = (time.perf_counter() - started) * 1000
        damaged = store.damaged()
    details = {**stats, "python": platform.python_version(), "first_search_ms": round(search_ms)}
    summary = f"{stats['total']} memories in {stats['data_dir']}"
    if damaged:
        details["damaged_ids"] = damaged
        shown = ", ".join(damaged[:5]) + (f" and {len(damaged) - 5} more" if damaged[5:] else "")
        summary += (
            f"; {len(damaged)} cannot be read (damaged: {shown}). `engram export` saves the "
            "others; `engram history ID` shows each one's last good text"
        )
    return CheckResult("store", not damaged, summary, details)


#: How `engram doctor` words each `ModelInfo` capability flag.
_FLAG_LABELS = {
    "supports_schema": "schema-constrained JSON",
    "preemptible": "chat before memory work",
    "gpu_offload": "GPU offload",
    "caches_prefix": "prompt prefix cache",
}


@check
def check_model_files() -> CheckResult:
    """The built-in models: present and verified, or what is wrong with each file."""
    from app.model_files import catalogue_entry, model_statuses
    from app.settings import load_settings

    llm = load_settings().llm
    statuses = model_statuses()
    own_chat = bool(llm.model_path or llm.openai_base_url)
    wanted = {"chosen": None if own_chat else llm.model, "agents": llm.agents_builtin()}
    verified = {s.model.key for s in statuses if s.problem is None}
    usable = all(key is None or key in verified for key in wanted.values())
    details = {s.model.key: s.line() for s in statuses}
    summary = "; ".join(s.line() for s in statuses)
    if wanted["agents"] is not None and wanted["agents"] != wanted["chosen"]:
        summary = f"memory agents: {catalogue_entry(wanted['agents']).label()}; {summary}"
    if not own_chat:
        summary = f"chosen: {catalogue_entry(llm.model).label()}; {summary}"
    chosen = catalogue_entry(llm.model)
    return CheckResult(
        "model files",
        usable,
        summary,
        {"chosen": chosen.key, "agents": wanted["agents"] or "the chat model's", **details},
    )


@check
def check_chat_model() -> CheckResult:
    """Loads the configured chat model and times a short generation."""
    from agents.llm.llamacpp import agent_threads
    from agents.llm.port import measure_speed, template_family
    from app.model_files import chosen_label, record_speed
    from app.runtime import Runtime
    from app.settings import load_settings

    settings = load_settings()
    with Runtime(settings) as runtime:
        model = runtime.model()
        info = model.info
        speed = measure_speed(model)
    details = {
        "model": info.name,
        "backend": info.backend,
        "chat_template": template_family(info.chat_template),
        "n_ctx": info.n_ctx,
        **info.capabilities(),
        "threads": info.threads,
        "tokens_per_s": round(speed.tokens_per_s, 1),
        "first_token_ms": round(speed.ttft_ms),
        **info.details,
    }
    flags = ", ".join(
        f"{_FLAG_LABELS[name]} {'yes' if on else 'no'}" for name, on in info.capabilities().items()
    )
    llm = settings.llm
    name = info.name if llm.openai_base_url else chosen_label(llm.model, llm.model_path)
    if not (llm.openai_base_url or llm.model_path) and speed.tokens > 1:
        record_speed(llm.model, speed.tokens_per_s, info.threads)  # for the settings dialog
    agents = llm.agents_builtin()
    details["agent_model"] = chosen_label(agents) if agents else name
    details["agent_threads"] = llm.agent_threads or agent_threads()
    summary = (
        f"{name} via {info.backend}: {speed.tokens_per_s:.0f} tokens/s, "
        f"template {details['chat_template']}, context {info.n_ctx}, "
        f"{info.threads} threads; {flags}; memory agents: {details['agent_model']} on "
        f"{details['agent_threads']} thread(s)"
    )
    return CheckResult("chat model", speed.tokens > 0, summary, details)


def cmd_doctor(args: argparse.Namespace) -> int:
    results = run_checks()
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2, default=str))
    else:
        for r in results:
            print(f"[{'ok' if r.ok else '!!'}] {r.name}: {r.summary}")
    return 0 if all(r.ok for r in results) else 1


def register(sub: Any) -> None:
    p = sub.add_parser("doctor", help="check models, engines and the store on this machine")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_doctor)
