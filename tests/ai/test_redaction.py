"""Redaction rules on their own: every credential shape named in the contract."""

import base64

import pytest

from apps.ai.redact import redact

AWS_ID = "AKIA" + "IOSFODNN7EXAMPLE"
GH = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
JWT = (
    "eyJhbGciOiJIUzI1NiJ9."
    + "eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
)


def test_it_removes_the_runs_secret_values_and_their_base64():
    secret = "s3cr3t-value-42"
    b64 = base64.b64encode(secret.encode()).decode().rstrip("=")
    out = redact(f"using {secret} and {b64}!", secrets=[secret])
    assert secret not in out and b64 not in out
    assert out.count("[REDACTED SECRET]") == 2


def test_it_removes_the_longer_of_two_overlapping_secrets_whole():
    out = redact("x=abcdef123456", secrets=["abcd", "abcdef123456"])
    assert "123456" not in out


def test_it_removes_token_shapes():
    text = "\n".join(
        [
            f"token {GH}",
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
            f"aws id {AWS_ID}",
            f"jwt {JWT}",
            "xoxb-123456789012-abcdefghijkl",
        ]
    )
    out = redact(text)
    for value in (GH, "github_pat_11ABC", AWS_ID, JWT[:20], "xoxb-1234"):
        assert value not in out


def test_it_removes_headers_assignments_and_url_credentials():
    text = (
        "Authorization: Bearer abc.def.ghi\n"
        "> authorization: token 0123456789abcdef\n"
        "curl -H 'Authorization: Basic dXNlcjpwYXNz' x\n"
        "DB_PASSWORD=hunter2hunter2\n"
        'password: "correct horse"\n'
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"
        "git clone https://bob:p4ssw0rd@git.example.com/r.git\n"
    )
    out = redact(text)
    for value in ("abc.def.ghi", "0123456789abcdef", "dXNlcjpwYXNz", "hunter2", "p4ssw0rd"):
        assert value not in out
    assert "wJalrXUtnFEMI" not in out
    assert "git.example.com/r.git" in out  # the public part stays readable


def test_it_removes_private_keys_even_unterminated():
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nAAAA\n"
    assert "b3BlbnNzaC1" not in redact("before\n" + key + "-----END OPENSSH PRIVATE KEY-----\n")
    assert "b3BlbnNzaC1" not in redact("before\n" + key)


def test_it_removes_emails_and_internal_hosts_but_keeps_public_ones():
    text = (
        "mail alice@example.com; db at pg-1.prod.internal:5432, cache.corp, "
        "build.acme.lan, 10.1.2.3 and 192.168.0.7; fetched https://pypi.org/simple"
    )
    out = redact(text, internal_suffixes=["acme.example"])
    for value in ("alice@example.com", "pg-1.prod.internal", "cache.corp", "build.acme.lan"):
        assert value not in out
    assert "10.1.2.3" not in out and "192.168.0.7" not in out
    assert "https://pypi.org/simple" in out
    assert "ci.acme.example" not in redact("ci.acme.example", internal_suffixes=["acme.example"])


@pytest.mark.parametrize(
    "text",
    [
        "\x00\x1b[31m" + "a" * 200_000 + "@" + "b." * 10_000 + "\udcff",
        # Shapes that made unbounded patterns quadratic (a word boundary at every other
        # character, each start scanning the whole run): this test took 18 s with them.
        "b." * 100_000,
        "-a." * 70_000 + "internal",
        "a@" * 100_000,
        "x://" * 50_000 + "a:" * 50_000,
        ("password" + " " * 1000) * 200,
    ],
    ids=["mixed", "labels", "host", "at-signs", "schemes", "spaces"],
)
def test_it_survives_hostile_text(text):
    assert isinstance(redact(text, secrets=["", "x"]), str)


def test_long_but_real_shapes_are_still_redacted():
    assert redact("db." + "a" * 63 + ".prod.internal") == "[internal host]"
    assert "db.corp" not in redact("build-" + "x" * 60 + ".db.corp")  # a 66-character label
    assert redact("n." * 15 + "svc.cluster.local") == "[internal host]"
    assert redact("MY_SERVICE_API_TOKEN = abc123") == "MY_SERVICE_API_TOKEN = [REDACTED]"
