"""Redaction: every kind of secret goes, the label stays, and look-alikes that fail their
checksum are left alone. Only counts per kind are kept."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from capture.redact import iban_ok, luhn_ok, redact
from capture.secret_shapes import digit_count

# Fake secrets in the shapes the providers use (none of them is a live credential).
SECRETS = {
    "card": "4111 1111 1111 1111",
    "iban": "DE89 3704 0044 0532 0130 00",
    "aws_key": "AKIAIOSFODNN7EXAMPLE",
    "github_token": "ghp_" + "a1B2c3D4e5" * 3 + "F6g7H8",
    "slack_token": "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    "stripe_key": "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc",
    "ai_key": "sk-proj-" + "Zx9" * 16,
    "google_key": "AIza" + "SyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"[:35],
    "jwt": (
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ."
        "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
    ),
}


@pytest.mark.parametrize("kind", sorted(SECRETS))
def test_each_kind_of_secret_is_redacted_and_counted(kind: str) -> None:
    value = SECRETS[kind]
    result = redact(f"before {value} after")
    assert value not in result.text
    assert result.text == f"before [REDACTED:{kind}] after"
    assert result.counts == {kind: 1}


def test_anthropic_style_key_and_github_fine_grained_token() -> None:
    text = "ANTHROPIC sk-ant-api03-" + "q" * 60 + " and github_pat_" + "A" * 30
    result = redact(text)
    assert "qqqq" not in result.text and "AAAA" not in result.text
    assert result.counts == {"ai_key": 1, "github_token": 1}


def test_password_lines_keep_the_label_and_lose_the_value() -> None:
    text = "user: alice\npassword: hunter2 extra\nAPI_KEY=abc123\nclient secret = s3cr3t"
    result = redact(text)
    assert result.text == (
        "user: alice\npassword: [REDACTED:password]\nAPI_KEY=[REDACTED:password]\n"
        "client secret = [REDACTED:password]"
    )
    assert result.counts == {"password": 3}


def test_private_key_block_is_removed_whole_even_without_its_end_line() -> None:
    block = (
        "-----BEGIN OPENSSH PRIVATE KEY-----\n"
        "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n"
        "AAAAAAAAAAABAAAAMwAAAAtzc2gtZWQyNTUxOQAAAC\n"
    )
    whole = redact(f"id_ed25519\n{block}-----END OPENSSH PRIVATE KEY-----\nthe end")
    assert whole.text == "id_ed25519\n[REDACTED:private_key]\nthe end"
    cut = redact(f"{block}\nMeeting at noon")  # the END line scrolled off screen
    assert "b3BlbnNz" not in cut.text and "AAAAAAAA" not in cut.text
    assert cut.text.endswith("Meeting at noon")


def test_card_number_running_into_another_number_is_still_found() -> None:
    result = redact("card 4111 1111 1111 1111 12/27")
    assert "4111" not in result.text
    assert result.counts == {"card": 1}


def test_counts_add_up_over_kinds() -> None:
    text = f"{SECRETS['card']} {SECRETS['card']} {SECRETS['aws_key']}\npassword: x"
    assert redact(text).counts == {"card": 2, "aws_key": 1, "password": 1}


def _random_non_luhn(rng: random.Random) -> str:
    while True:
        digits = str(rng.choice("3456")) + "".join(str(rng.randrange(10)) for _ in range(15))
        if not luhn_ok(digits):
            return digits


def test_random_16_digit_numbers_failing_luhn_are_not_redacted() -> None:
    rng = random.Random(4)
    for _ in range(200):
        number = _random_non_luhn(rng)
        spaced = " ".join(number[i : i + 4] for i in range(0, 16, 4))
        for text in (number, spaced):
            assert redact(f"order {text}").text == f"order {text}"


@pytest.mark.parametrize(
    "text",
    [
        "DE89 3704 0044 0532 0130 07",  # IBAN shape, wrong checksum
        "GB82 WEST 1234 5698 7654 33",
        "Order 1234567812345670 shipped",  # passes Luhn but no card issuer starts with 1
        "Call +44 20 7946 0958 on 2024-01-15 at 10:30",
        "sk-short and sk_live_tooShort",
        "Forgot password?  Reset your password here",
        "eyJub3QiOiJqd3QifQ.eyJzdWIiOiIxMjM0NTY3ODkwIn0.notreallyasignature",  # no alg/typ
        "the token is in the vault",
        "BEGIN PRIVATE KEY discussion without dashes",
    ],
)
def test_look_alikes_are_left_alone(text: str) -> None:
    result = redact(text)
    assert result.text == text
    assert result.counts == {}


def test_checksums() -> None:
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert iban_ok("GB82 WEST 1234 5698 7654 32") and not iban_ok("GB82 WEST 1234 5698 7654 33")
    assert not iban_ok("DE89 3704 0044 0532 0130")  # right checksum math, wrong length


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300))
def test_redaction_never_grows_secrets_and_is_idempotent(text: str) -> None:
    once = redact(text)
    twice = redact(once.text)
    assert twice.text == once.text
    assert twice.counts == {}


@given(st.text())
def test_digit_count_counts_ascii_digits_in_any_text(text: str) -> None:
    # bytes' translate, not a loop: a digit is one UTF-8 byte, never inside another character
    assert digit_count(text) == sum(c in "0123456789" for c in text)


def test_a_masked_page_is_not_masked_again_by_the_long_token_pass() -> None:
    # the long-token pass reads the text with its masks blanked: a mask with a long label
    # before it stays as it is, and a token glued to a mask is still looked at on its own
    once = redact("DATABASE_CONNECTION_PASSWORD=Qw7xK2pLm9ZtR4vB").text
    assert "Qw7xK2pLm9ZtR4vB" not in once and redact(once).text == once
    glued = "[REDACTED:password]" + "aZ3kq9XbQ2mN7pR4sT8uV1wY6zA0cE5gHLo"
    assert "aZ3kq9XbQ2mN7pR4sT8uV1wY6zA0cE5gHLo" not in redact(glued).text
