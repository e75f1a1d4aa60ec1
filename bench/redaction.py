"""Redaction benchmark: `python -m bench.redaction --json`.

Quality on the generated corpus (tests/capture/secret_corpus.py: secrets as screens show them,
half of them OCR variants, and look-alikes), for the part the rules were tuned on and the part
held out; and speed, as the median of several runs after a warm-up, in CPU time of this
process (`*_ms`: what redaction costs, whatever else the machine runs) and wall time
(`*_wall_ms`):
- dense_screen_ms: a 4,000-character screen of mixed terminal, browser and chat text with a
  dozen secrets in it (target <= 5 ms);
- worst_100k_ms: the slowest of the 100,000-character inputs that used to blow up or could
  (800-digit arrays, phone lists, one long base64 line, repeated labels, BIP-39 word soup,
  PEM headers without an END, hex, base32 groups, one character 100,000 times, accented prose,
  every rule's hint on one page, key=value pairs, 40-character base64 words, ...) (target
  <= 50 ms).

Prints {"corpus": {part: {...}}, "dense_screen_ms", "dense_screen_wall_ms", "worst_100k_ms",
"worst_100k_wall_ms", "worst_case", "cases_ms", "cases_wall_ms", "loadavg"}.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import string
import time
from collections import Counter
from typing import Any

from capture.redact import Redactor, default_rules
from tests.capture.secret_corpus import leaked, look_alikes, secrets


def corpus_summary(part: str) -> dict[str, Any]:
    redactor = Redactor()
    samples = secrets(part)
    leaks = Counter(
        s.kind for s in samples if any(leaked(redactor.redact(s.text).text, v) for v in s.secrets)
    )
    alikes = look_alikes(part)
    touched = [a.text for a in alikes if redactor.redact(a.text).text != a.text]
    return {
        "secrets": len(samples),
        "kinds": len({s.kind for s in samples}),
        "ocr_variants": sum(s.ocr for s in samples),
        "removed_pct": round(100 * (1 - sum(leaks.values()) / len(samples)), 2),
        "leaked_by_kind": dict(leaks),
        "look_alikes": len(alikes),
        "look_alikes_touched_pct": round(100 * len(touched) / len(alikes), 2),
        "touched": touched[:10],
    }


def dense_screen() -> str:
    """A busy screen: a terminal, a browser form and a chat, with secrets among the text."""
    rng = random.Random(7)
    parts = [sample.text for sample in rng.sample(secrets("held"), 12)]
    filler = [
        "~/projects/app $ git status",
        "On branch main. Your branch is up to date with 'origin/main'.",
        "Meeting notes: ship the capture pipeline by Friday; Alice reviews the budget.",
        "Inbox (3)  Re: quarterly report  Tue 10:30",
        "Order #7821 shipped on 2024-03-14, tracking 1Z999AA10123456784",
        "def handler(event, context):\n    return {'status': 200, 'body': json.dumps(event)}",
        "Page 1 2 3 4 5 6 7 8 9 10 Next",
    ]
    text: list[str] = []
    while sum(map(len, text)) < 4000:
        text.append(rng.choice(filler))
        if parts:
            text.append(parts.pop())
    return "\n".join(text)[:4000]


def worst_cases(size: int = 100_000) -> dict[str, str]:
    """Inputs a hostile page would pick, each `size` characters: ones that used to blow up, ones
    that open every rule's gate, and ones dense in candidates that each cost a check."""
    rng = random.Random(3)
    b64 = string.ascii_letters + string.digits + "+/"
    b32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    prose = "The quarterly report is due on Friday; please review the budget numbers. "
    accented = "Le café a reçu la facture; Jürgen prüft die Übersicht — señal, naïve résumé. "
    words = [w for w in "abandon ability able about above absent absorb abstract".split()]
    # Every hint some rule waits for before it searches at all (provider prefixes, labels,
    # command names, heading words): on one page, no rule is skipped.
    hints = " ".join(sorted({h for rule in default_rules() for h in rule.hints}))
    labels = ["password", "token", "secret", "api_key", "pwd", "pin", "key"]
    short = ["x", "abc", "12", "see"]  # values no label takes for a secret, but each is checked
    upper = string.ascii_uppercase + string.digits + " "

    def fill(make: Any) -> str:
        out: list[str] = []
        n = 0
        while n < size:
            piece = make()
            out.append(piece)
            n += len(piece) + 1
        return " ".join(out)[:size]

    def repeat(piece: str) -> str:
        return (piece * (size // len(piece) + 1))[:size]

    def b64_token(length: int) -> str:
        return "".join(rng.choice(b64) for _ in range(length))

    return {
        "digits_spaced": fill(lambda: str(rng.randrange(10))),
        "digit_groups_4": fill(lambda: f"{rng.randrange(10000):04d}"),
        "phone_numbers": fill(lambda: f"+1 415 555 {rng.randrange(10000):04d}"),
        "base64_line": b64_token(size),
        "labels_repeated": repeat("password: "),
        "bip39_words": fill(lambda: rng.choice(words)),
        "prose": repeat(prose),
        "pem_headers": repeat("-----BEGIN PRIVATE KEY-----\n"),
        "hex": "".join(rng.choice("0123456789abcdef") for _ in range(size)),
        "base32_groups": fill(lambda: "".join(rng.choice(b32) for _ in range(4))),
        "prefixes": fill(lambda: rng.choice(["sk-", "ghp_", "AKIA", "eyJ", "glpat-", "xoxb-", "://"])),
        "urls": fill(lambda: f"https://u{rng.randrange(99)}:pw@example.com/p?token=x&key=y"),
        "mixed_tokens": fill(lambda: b64_token(rng.randrange(8, 60))),
        "one_letter": "a" * size,
        "one_digit": "5" * size,
        "one_dash": "-" * size,
        "digits_unbroken": "".join(rng.choice(string.digits) for _ in range(size)),
        "prose_accented": repeat(accented),
        "every_hint_once": (hints + " " + repeat(prose))[:size],
        "every_hint_repeated": repeat(hints + " "),
        "key_value_pairs": fill(lambda: f"{rng.choice(labels)}={rng.choice(short)}"),
        "key_value_secrets": fill(lambda: f"{rng.choice(labels[:5])}={b64_token(12)}"),
        "base64_words": fill(lambda: b64_token(40)),
        "upper_and_digits": "".join(rng.choice(upper) for _ in range(size)),
    }  # fmt: skip


def timed_ms(redactor: Redactor, text: str, runs: int) -> tuple[float, float]:
    """Median CPU and wall milliseconds of `runs` redactions of `text`."""
    cpu, wall = [], []
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        redactor.redact(text)
        cpu.append((time.process_time() - started_cpu) * 1000)
        wall.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(cpu), 2), round(statistics.median(wall), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true", help="print JSON only")
    parser.add_argument("--runs", type=int, default=7, help="timed runs per input (median)")
    args = parser.parse_args()
    default_rules()
    redactor = Redactor()
    redactor.redact("warm up: password: hunter2 abandon ability able about above absent")
    dense = dense_screen()
    cases = {name: timed_ms(redactor, text, args.runs) for name, text in worst_cases().items()}
    worst = max(cases, key=lambda name: cases[name][0])
    dense_cpu, dense_wall = timed_ms(redactor, dense, args.runs * 3)
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    result = {
        "corpus": {part: corpus_summary(part) for part in ("tune", "held")},
        "dense_screen_chars": len(dense),
        "dense_screen_ms": dense_cpu,
        "dense_screen_wall_ms": dense_wall,
        "worst_100k_ms": cases[worst][0],
        "worst_100k_wall_ms": cases[worst][1],
        "worst_case": worst,
        "cases_ms": {name: cpu for name, (cpu, _) in cases.items()},
        "cases_wall_ms": {name: wall for name, (_, wall) in cases.items()},
        "loadavg": load,
    }
    print(json.dumps(result, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
