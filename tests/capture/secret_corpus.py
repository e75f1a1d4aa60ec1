"""A generated corpus of secrets as screens show them, and of look-alikes that are not secrets.

Nothing here is a real credential: every value is drawn from a seeded RNG in the provider's
shape (checksums computed where the format has one). Each sample may come in an OCR variant
(tesseract reads "1" as "l", "0" as "O"). Two parts: `tune` (seed 1, the first layouts of each
kind) is what the redactor was tuned on; `held` (seed 2, every layout, other fillers) is
reported untouched.
"""

from __future__ import annotations

import base64
import random
import string
from collections.abc import Callable
from dataclasses import dataclass

from mnemonic import Mnemonic

from capture.secret_shapes import IBAN_LENGTHS, luhn_ok


@dataclass(frozen=True)
class Sample:
    kind: str
    text: str
    #: The secret values: none of them may survive, not even in part.
    secrets: tuple[str, ...]
    #: An OCR read of the screen, with confusable characters swapped.
    ocr: bool = False


@dataclass(frozen=True)
class LookAlike:
    name: str
    text: str


ALNUM = string.ascii_letters + string.digits
B64 = ALNUM + "+/"
HEXD = "0123456789abcdef"
B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_SWAPS = {"1": "l", "l": "1", "0": "O", "O": "0", "I": "l"}


def _s(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _mixed(rng: random.Random, n: int) -> str:
    """Alphanumeric with at least two digits, upper and lower (as random tokens are)."""
    while True:
        value = _s(rng, ALNUM, n)
        if sum(c.isdigit() for c in value) >= 3 and not value.islower() and not value.isupper():
            return value


def _password(rng: random.Random) -> str:
    words = ["Blue", "Tiger", "Maple", "River", "Sun", "Qw", "Xk", "Lamp", "Orbit", "Fjord"]
    return (
        rng.choice(words)
        + str(rng.randrange(10, 9999))
        + rng.choice("!@#$%&*?")
        + _s(rng, string.ascii_letters, rng.randrange(2, 5))
    )


def _card(rng: random.Random) -> str:
    prefix = rng.choice(["4", "51", "52", "55", "2221", "37", "6011"])
    length = 15 if prefix == "37" else 16
    while True:
        digits = prefix + _s(rng, string.digits, length - len(prefix))
        if luhn_ok(digits):
            return digits


def _iban(rng: random.Random) -> str:
    country = rng.choice(["DE", "GB", "FR", "NL", "ES", "IT", "CH", "BE"])
    n = IBAN_LENGTHS[country] - 4
    if country in ("GB", "NL"):
        body = _s(rng, string.ascii_uppercase, 4) + _s(rng, string.digits, n - 4)
    elif country == "IT":
        body = rng.choice(string.ascii_uppercase) + _s(rng, string.digits, n - 1)
    else:
        body = _s(rng, string.digits, n)
    moved = body + country + "00"
    check = 98 - int("".join(str(int(c, 36)) for c in moved)) % 97
    return f"{country}{check:02d}{body}"


def _ssn(rng: random.Random) -> str:
    area = rng.choice([n for n in range(1, 900) if n != 666])
    return f"{area:03d}-{rng.randrange(1, 100):02d}-{rng.randrange(1, 10000):04d}"


def _grouped(value: str, size: int = 4, sep: str = " ") -> str:
    return sep.join(value[i : i + size] for i in range(0, len(value), size))


def ocr(value: str, rng: random.Random, swaps: int = 1) -> str:
    """`value` as OCR may read it: a confusable character or two swapped."""
    spots = [i for i, c in enumerate(value) if c in _SWAPS]
    chars = list(value)
    for i in rng.sample(spots, min(swaps, len(spots))):
        chars[i] = _SWAPS[chars[i]]
    return "".join(chars)


Gen = Callable[[random.Random, int], tuple[str, tuple[str, ...]]]


def _pick(layouts: list[str], layout: int) -> str:
    return layouts[layout % len(layouts)]


# Each generator: (rng, layout number) -> (screen text, secret values in it).
def g_url(rng: random.Random, n: int) -> tuple[str, tuple[str, ...]]:
    pw = _password(rng)
    layout = _pick(
        [
            "Open https://admin:{pw}@intranet.example.com/dashboard to continue",
            "remote: https://deploy:{pw}@git.example.org/team/app.git",
            "ftp://backup:{pw}@files.example.net/archive",
        ],
        n,
    )
    return layout.format(pw=pw), (pw,)


def g_dsn(rng: random.Random, n: int) -> tuple[str, tuple[str, ...]]:
    pw = _password(rng).replace("@", "x").replace("#", "y") + _s(rng, ALNUM, 3)
    layout = _pick(
        [
            "DATABASE_URL=postgres://app_user:{pw}@db.internal:5432/app",
            "redis://:{pw}@cache.internal:6379/0",
            'conn = psycopg.connect("postgresql://report:{pw}@10.0.4.2/sales")',
            "MONGO_URI=mongodb+srv://svc:{pw}@cluster0.example.mongodb.net/prod",
            "amqp://guest:{pw}@rabbit.local:5672/",
        ],
        n,
    )
    return layout.format(pw=pw), (pw,)


def g_azure(rng: random.Random, n: int) -> tuple[str, tuple[str, ...]]:
    key = base64.b64encode(rng.randbytes(64)).decode()
    layout = _pick(
        [
            "DefaultEndpointsProtocol=https;AccountName=stprod;AccountKey={k};"
            "EndpointSuffix=core.windows.net",
            "AZURE_STORAGE_CONNECTION_STRING=...;AccountKey={k}",
            "Endpoint=sb://bus.servicebus.windows.net/;SharedAccessKeyName=root;"
            "SharedAccessKey={k}",
        ],
        n,
    )
    return layout.format(k=key), (key,)


def g_env(rng: random.Random, n: int) -> tuple[str, tuple[str, ...]]:
    pw = _password(rng)
    label = _pick(
        [
            "DB_PASSWORD",
            "MYSQL_ROOT_PASSWORD",
            "POSTGRES_PASSWORD",
            "REDIS_PASS",
            "SMTP_PASSWORD",
            "ADMIN_PASSWD",
        ],
        n,
    )
    sep = rng.choice(["=", "=", ": ", '="'])
    tail = '"' if sep.endswith('"') else ""
    return f"export {label}{sep}{pw}{tail}\nexport DEBUG=false", (pw,)


def g_secret_key(rng: random.Random, n: int) -> tuple[str, tuple[str, ...]]:
    key = "django-insecure-" + _s(rng, ALNUM + "!@#%^&*(-_=+)", 40)
    if n % 2:
        key = _mixed(rng, 48)
    label = _pick(
        ["DJANGO_SECRET_KEY", "SECRET_KEY", "APP_SECRET", "JWT_SECRET", "FLASK_SECRET_KEY"], n
    )
    return f"{label}={key}", (key,)


def g_bearer(rng: random.Random, n: int) -> tuple[str, tuple[str, ...]]:
    tok = _s(rng, ALNUM + "-._~", rng.randrange(24, 60))
    layout = _pick(
        [
            "Authorization: Bearer {t}",
            "curl -H 'Authorization: Bearer {t}' https://api.example.com/v1/me",
            "authorization: bearer {t}",
            "Headers  Authorization  Bearer {t}",
        ],
        n,
    )
    return layout.format(t=tok), (tok,)


def g_basic(rng: random.Random, n: int) -> tuple[str, tuple[str, ...]]:
    cred = base64.b64encode(f"user{rng.randrange(99)}:{_password(rng)}".encode()).decode()
    return _pick(["Authorization: Basic {c}", "Proxy-Authorization: Basic {c}"], n).format(
        c=cred
    ), (cred,)


def g_sshpass(rng: random.Random, n: int) -> tuple[str, tuple[str, ...]]:
    pw = _password(rng)
    layout = _pick(
        [
            "$ sshpass -p '{pw}' ssh deploy@10.0.0.12",
            "sshpass -p {pw} scp build.tar ops@host:/tmp",
            'sshpass -p "{pw}" rsync -a ./ web@prod:/srv',
        ],
        n,
    )
    return layout.format(pw=pw), (pw,)


def g_mysql(rng: random.Random, n: int) -> tuple[str, tuple[str, ...]]:
    pw = _password(rng).replace("!", "x").replace("&", "y")
    layout = _pick(
        [
            "$ mysql -u root -p{pw} shop",
            "mysqldump -h db -u backup -p{pw} --all-databases > all.sql",
            "$ psql --password={pw} -h db",
            "$ redis-cli -h cache -a {pw} ping",
            "$ curl -u admin:{pw} https://jenkins.local/api/json",
            "$ docker login -u ci -p {pw} registry.example.com",
        ],
        n,
    )
    return layout.format(pw=pw), (pw,)


def g_foreign(rng: random.Random, n: int) -> tuple[str, tuple[str, ...]]:
    pw = _password(rng)
    label = _pick(
        [
            "Passwort: {pw}",
            "mot de passe : {pw}",
            "Contraseña: {pw}",
            "Senha: {pw}",
            "Kennwort = {pw}",
            "Wachtwoord: {pw}",
        ],
        n,
    )
    return f"Benutzer: sam\n{label.format(pw=pw)}", (pw,)


def g_passcode(rng: random.Random, n: int) -> tuple[str, tuple[str, ...]]:
    code = _s(rng, string.digits, rng.choice([4, 6, 6, 8]))
    layout = _pick(
        [
            "Passcode: {c}",
            "PIN: {c}",
            "Your verification code: {c}",
            "CVV {c}"[:99],
            "PIN code {c}",
        ],
        n,
    )
    if layout.startswith("CVV"):
        code = code[:3]
    return layout.format(c=code), (code,)


def g_form(rng: random.Random, n: int) -> tuple[str, tuple[str, ...]]:
    pw = _password(rng)
    layout = _pick(
        [
            "Username sam.lee  Password {pw}  Remember me",
            "Login: sam.lee Password: {pw} Sign in",
            "Username\nsam.lee\nPassword\n{pw}\nSign in",
            "E-mail sam@example.com Password {pw}",
        ],
        n,
    )
    return layout.format(pw=pw), (pw,)


def g_password(rng: random.Random, n: int) -> tuple[str, tuple[str, ...]]:
    pw = _password(rng)
    layout = _pick(
        [
            "password: {pw}",
            "Password: {pw}",
            '"password": "{pw}",',
            "The wifi password is {pw}",
            "pwd={pw}",
            "Passphrase: {pw} river stone",
        ],
        n,
    )
    return layout.format(pw=pw), (pw,)


def g_aws_pair(rng: random.Random, n: int) -> tuple[str, tuple[str, ...]]:
    kid = "AKIA" + _s(rng, string.ascii_uppercase + string.digits, 16)
    secret = _mixed(rng, 36) + rng.choice("/+") + _s(rng, ALNUM, 3)
    layout = _pick(
        [
            "Access key ID  {k}  Secret access key  {s}  Show",
            "Access key ID,Secret access key\n{k},{s}",
            "aws_access_key_id = {k}\naws_secret_access_key = {s}",
            "{k}\t{s}\tActive",
        ],
        n,
    )
    return layout.format(k=kid, s=secret), (kid, secret)


def g_prefixed(prefix: str, body: Callable[[random.Random], str], layouts: list[str]) -> Gen:
    def gen(rng: random.Random, n: int) -> tuple[str, tuple[str, ...]]:
        tok = prefix + body(rng)
        return _pick(layouts, n).format(t=tok), (tok,)

    return gen


_TOKEN_LAYOUTS = ["token {t}", "export TOKEN={t}", "Your new token: {t} (copy it now)", "{t}"]


def g_sendgrid(rng: random.Random, n: int) -> tuple[str, tuple[str, ...]]:
    tok = f"SG.{_s(rng, ALNUM + '-_', 22)}.{_s(rng, ALNUM + '-_', 43)}"
    return _pick(["SENDGRID_API_KEY={t}", "API key created: {t}", "{t}"], n).format(t=tok), (tok,)


def g_ssn(rng: random.Random, n: int) -> tuple[str, tuple[str, ...]]:
    ssn = _ssn(rng)
    layout = _pick(
        ["SSN: {s}", "Social Security Number {s}", "Employee  Jane Roe  {s}  W-4", "SSN {x}"], n
    )
    return layout.format(s=ssn, x=ssn.replace("-", " ")), (ssn, ssn.replace("-", " "))


def g_totp(rng: random.Random, n: int) -> tuple[str, tuple[str, ...]]:
    key = _s(rng, B32, rng.choice([16, 32]))
    layout = _pick(
        [
            "Can't scan the QR code? Enter this setup key: {g}",
            "Secret key\n{g}",
            "otpauth://totp/Example:sam?secret={k}&issuer=Example",
            "Two-factor authentication. Key: {k}",
            "Authenticator setup key {l}",
        ],
        n,
    )
    return layout.format(g=_grouped(key), k=key, l=_grouped(key.lower())), (
        key,
        _grouped(key),
        _grouped(key.lower()),
    )


def g_recovery(rng: random.Random, n: int) -> tuple[str, tuple[str, ...]]:
    style = n % 3
    if style == 0:
        codes = [f"{_s(rng, HEXD, 5)}-{_s(rng, HEXD, 5)}" for _ in range(6)]
        head = "Download your recovery codes"
    elif style == 1:
        codes = [f"{_s(rng, string.digits, 4)} {_s(rng, string.digits, 4)}" for _ in range(6)]
        head = "Backup codes\nKeep these somewhere safe."
    else:
        codes = [
            "-".join(_s(rng, string.ascii_uppercase + string.digits, 4) for _ in range(3))
            for _ in range(5)
        ]
        head = "Recovery codes for sam@example.com"
    codes = [
        c
        for c in codes
        if style or (sum(ch.isdigit() for ch in c) >= 2 and any(ch in "abcdef" for ch in c))
    ]
    return head + "\n" + "\n".join(codes), tuple(codes)


_MNEMO = Mnemonic("english")


def g_seed(rng: random.Random, n: int) -> tuple[str, tuple[str, ...]]:
    entropy = rng.randbytes(16 if n % 2 == 0 else 32)
    words = _MNEMO.to_mnemonic(entropy).split()
    style = n % 3
    if style == 0:
        body = " ".join(words)
    elif style == 1:
        body = "\n".join(f"{i}. {w}" for i, w in enumerate(words, 1))
    else:
        body = "  ".join(f"{i} {w}" for i, w in enumerate(words, 1))
    return f"Secret Recovery Phrase\n{body}\nI saved it", tuple(
        words[i] + " " + words[i + 1] for i in range(0, len(words) - 1, 3)
    )


def g_eth(rng: random.Random, n: int) -> tuple[str, tuple[str, ...]]:
    key = _s(rng, HEXD, 64)
    layout = _pick(
        ["Private key: 0x{k}", "Export private key\n{k}", "PRIVATE_KEY=0x{k}", "wallet key {k}"], n
    )
    return layout.format(k=key), (key,)


def g_card(rng: random.Random, n: int) -> tuple[str, tuple[str, ...]]:
    digits = _card(rng)
    if len(digits) == 15:
        shown = f"{digits[:4]} {digits[4:10]} {digits[10:]}"
    else:
        shown = _pick([_grouped(digits), _grouped(digits, sep="-"), digits], n)
    layout = _pick(["Card number {c}  Exp 04/29", "VISA •• {c}", "card: {c}"], n)
    return layout.format(c=shown), (shown,)


def g_iban(rng: random.Random, n: int) -> tuple[str, tuple[str, ...]]:
    iban = _iban(rng)
    shown = _grouped(iban) if n % 2 == 0 else iban
    return _pick(["IBAN: {i}", "Pay to {i} by Friday", "Konto {i} BIC DEUTDEFF"], n).format(
        i=shown
    ), (shown,)


def g_key_block(rng: random.Random, n: int) -> tuple[str, tuple[str, ...]]:
    lines = [_s(rng, B64, 64) for _ in range(4)]
    kind = _pick(["RSA ", "OPENSSH ", "EC ", ""], n)
    end = f"\n-----END {kind}PRIVATE KEY-----" if n % 2 == 0 else ""
    return f"-----BEGIN {kind}PRIVATE KEY-----\n" + "\n".join(lines) + end, tuple(lines)


def g_jwt(rng: random.Random, n: int) -> tuple[str, tuple[str, ...]]:
    head = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').decode().rstrip("=")
    body = (
        base64.urlsafe_b64encode(f'{{"sub":"{rng.randrange(10**9)}"}}'.encode())
        .decode()
        .rstrip("=")
    )
    tok = f"{head}.{body}.{_s(rng, ALNUM + '-_', 43)}"
    return _pick(["Cookie: session={t}", "id_token {t}", "{t}"], n).format(t=tok), (tok,)


def g_api_key_label(rng: random.Random, n: int) -> tuple[str, tuple[str, ...]]:
    tok = _mixed(rng, rng.randrange(24, 40))
    layout = _pick(
        [
            "api_key: {t}",
            "X-API-Key: {t}",
            'client_secret = "{t}"',
            "Access token: {t}",
            "x-api-key {t}",
        ],
        n,
    )
    return layout.format(t=tok), (tok,)


def g_opaque(rng: random.Random, n: int) -> tuple[str, tuple[str, ...]]:
    tok = _mixed(rng, rng.randrange(36, 64))
    return _pick(["Copy this key now, it will not be shown again: {t}", "{t}"], n).format(t=tok), (
        tok,
    )


GENERATORS: dict[str, Gen] = {
    "url_password": g_url,
    "dsn": g_dsn,
    "azure_key": g_azure,
    "env_password": g_env,
    "env_secret_key": g_secret_key,
    "bearer": g_bearer,
    "basic_auth": g_basic,
    "sshpass": g_sshpass,
    "cli_password": g_mysql,
    "foreign_password": g_foreign,
    "passcode": g_passcode,
    "form_line": g_form,
    "password": g_password,
    "aws_pair": g_aws_pair,
    "gitlab": g_prefixed("glpat-", lambda r: _s(r, ALNUM + "-_", 20), _TOKEN_LAYOUTS),
    "huggingface": g_prefixed("hf_", lambda r: _s(r, string.ascii_letters, 34), _TOKEN_LAYOUTS),
    "npm": g_prefixed("npm_", lambda r: _s(r, ALNUM, 36), _TOKEN_LAYOUTS),
    "sendgrid": g_sendgrid,
    "digitalocean": g_prefixed("dop_v1_", lambda r: _s(r, HEXD, 64), _TOKEN_LAYOUTS),
    "github": g_prefixed("ghp_", lambda r: _s(r, ALNUM, 36), _TOKEN_LAYOUTS),
    "slack": g_prefixed(
        "xoxb-", lambda r: f"{_s(r, string.digits, 12)}-{_s(r, ALNUM, 24)}", _TOKEN_LAYOUTS
    ),
    "stripe": g_prefixed("sk_live_", lambda r: _s(r, ALNUM, 24), _TOKEN_LAYOUTS),
    "openai": g_prefixed("sk-proj-", lambda r: _s(r, ALNUM + "-_", 48), _TOKEN_LAYOUTS),
    "google": g_prefixed("AIza", lambda r: _s(r, ALNUM + "-_", 35), _TOKEN_LAYOUTS),
    "ssn": g_ssn,
    "totp": g_totp,
    "recovery_codes": g_recovery,
    "seed_phrase": g_seed,
    "eth_key": g_eth,
    "card": g_card,
    "iban": g_iban,
    "private_key": g_key_block,
    "jwt": g_jwt,
    "api_key_label": g_api_key_label,
    "opaque_token": g_opaque,
}

_FILLER = {
    "tune": ["Meeting notes — Tuesday", "~/projects/app $", "Inbox (3)", ""],
    "held": ["Welcome back, Sam", "Terminal — zsh — 120×40", "Settings › Security", "Notes.txt"],
}


def secrets(part: str, per_kind: int = 4) -> list[Sample]:
    """`per_kind` samples of every kind (half of them OCR variants) for one part."""
    rng = random.Random(1 if part == "tune" else 2)
    out = []
    for kind, gen in GENERATORS.items():
        for i in range(per_kind):
            layout = i if part == "tune" else i + rng.randrange(0, 7)
            text, values = gen(rng, layout)
            if i % 2 == 1:  # an OCR read of the same screen
                variant = {v: ocr(v, rng) for v in values}
                for v, w in variant.items():
                    text = text.replace(v, w)
                values = tuple(variant.values())
            filler = rng.choice(_FILLER[part])
            body = f"{filler}\n{text}\nLast updated 3 minutes ago"
            out.append(Sample(kind, body, values, ocr=i % 2 == 1))
    return out


_LOOK_ALIKES = [
    "Password: must be at least {n} characters long",
    "Password must contain a number and a symbol",
    "Passwords must match",
    "Password strength: strong",
    "Password: ********",
    "Forgot password?",
    "Password (8+ characters)",
    "Password: Required",
    "Enter your password",
    "Show password",
    "Password reset link sent to sam@example.com",
    "Change password",
    "Password manager",
    "PASSWORD_MIN_LENGTH = {n}",
    "token: see the API docs",
    "Token: expires in 3600 seconds",
    "Access token: not set",
    "API key: (none)",
    "Secret: Santa party on Friday",
    "api_key = os.environ['API_KEY']",
    "password = getpass.getpass()",
    "token = request.headers.get('Authorization')",
    "secret = settings.SECRET_KEY",
    "password = input('Password: ')",
    "DB_PASSWORD=${{DB_PASSWORD}}",
    "export API_KEY=$API_KEY",
    'password: "{{{{ vault_db_password }}}}"',
    "client_secret: <your-client-secret>",
    "Page {pages} Next",
    "{pages}",
    "Call +1 (415) 555-{p4} or +44 20 7946 {p4}",
    "{phones}",
    "Order #{order} shipped on 2024-03-{d2}",
    "commit {sha40}",
    "sha256: {sha64}",
    "Txn Hash: 0x{sha64}",
    "Request ID: {uuid}",
    "Build {n}.{n}.{n} released {d2}/03/2024 at 10:{d2}",
    "Server 192.168.{n}.{n} port 8080",
    "MAC 3c:22:fb:{h2}:{h2}:{h2}",
    "ISBN 978-3-16-148410-0",
    "Tracking 1Z999AA1012345678{n1}",
    "[{digits}]",
    "https://github.com/example/app/pull/{n}",
    "postgres://localhost:5432/app",
    "git@github.com:example/app.git",
    "THIS WEEK IN REVIEW {year}",
    "The key to a good backup strategy is testing your restores.",
    "Use a Bearer token in the Authorization header.",
    "Basic authentication is disabled for this workspace.",
    "Recovery codes were regenerated on 2024-03-{d2}. Store them safely.",
    "Keep the seed phrase offline; never type it into a website.",
    "Colors: #a1b2c3 #ffcc00 #{h2}{h2}{h2}",
    "/usr/local/lib/python3.12/site-packages/requests/adapters.py",
    "def get_password_hash(password: str) -> str:",
    "if not token: raise AuthError('missing token')",
    "PIN must be 4 to 8 digits",
    "One-time code sent to your phone",
    "The secret ingredient is love.",
    "Total: $1,234.56 (invoice 2024-{n}-{d2})",
    "Room 4B, floor {n}, badge access required",
    "SSN format: XXX-XX-XXXX",
    "IBAN: enter your bank account number",
    "The meeting moved to Thursday because the budget review ran long again today",
    "PasswordField(label='Password', required=True)",
    "see docs/auth.md#access-token for details",
    "Tuesday 10:30 - 11:00 Standup with the platform team in room Apollo",
    "ticket ABC-{n}: login page shows password twice",
    "Version: 2024.03.{d2}  Build: {n}{n}{n}",
    "Score 12 14 15 16 18 20 21 22 23 24 26 28",
]


def look_alikes(part: str, count: int = 70) -> list[LookAlike]:
    rng = random.Random(11 if part == "tune" else 12)
    out = []
    for i in range(count):
        template = (
            _LOOK_ALIKES[i % len(_LOOK_ALIKES)] if part == "tune" else rng.choice(_LOOK_ALIKES)
        )
        fill = {
            "n": rng.randrange(2, 40),
            "n1": rng.randrange(10),
            "d2": f"{rng.randrange(1, 29):02d}",
            "p4": f"{rng.randrange(10000):04d}",
            "h2": _s(rng, HEXD, 2),
            "year": rng.randrange(2019, 2027),
            "order": _s(rng, "789", 1) + _s(rng, string.digits, 11),
            "sha40": _s(rng, HEXD, 40),
            "sha64": _s(rng, HEXD, 64),
            "uuid": "-".join(_s(rng, HEXD, k) for k in (8, 4, 4, 4, 12)),
            "pages": " ".join(str(k) for k in range(1, rng.randrange(12, 60))),
            "phones": "\n".join(
                f"+1 {rng.randrange(200, 999)} {rng.randrange(200, 999)} {rng.randrange(10000):04d}"
                for _ in range(12)
            ),
            "digits": ", ".join(str(rng.randrange(10)) for _ in range(80)),
        }
        out.append(LookAlike(template.split(" ")[0], template.format(**fill)))
    return out


def leaked(text: str, secret: str) -> bool:
    """Whether any 8 characters of `secret` in a row (all of it, if shorter) are still there."""
    if len(secret) <= 8:
        return secret in text
    return any(secret[i : i + 8] in text for i in range(len(secret) - 7))
