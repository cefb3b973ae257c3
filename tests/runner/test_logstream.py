"""Masking and spooling of the job log, without a control plane."""

from deltaci_runner.logstream import LogSpool, Masker

SECRET = "hunter2-very-secret"


def feed_all(masker: Masker, pieces: list[bytes]) -> bytes:
    out = b"".join(masker.feed(p) for p in pieces)
    return out + masker.flush()


def test_it_masks_a_secret_inside_one_chunk() -> None:
    assert feed_all(Masker([SECRET]), [f"token={SECRET}!\n".encode()]) == b"token=***!\n"


def test_it_masks_a_secret_split_at_every_possible_boundary() -> None:
    data = f"before {SECRET} after\n".encode()
    for cut in range(1, len(data)):
        masker = Masker([SECRET])
        first = masker.feed(data[:cut])
        second = masker.feed(data[cut:]) + masker.flush()
        # Equality also proves no fragment of the secret went out with the first piece.
        assert first + second == b"before *** after\n", cut


def test_it_masks_a_secret_fed_one_byte_at_a_time() -> None:
    data = f"a{SECRET}b{SECRET}c".encode()
    masker = Masker([SECRET, "other"])
    emitted = [masker.feed(data[i : i + 1]) for i in range(len(data))]
    assert b"".join(emitted) + masker.flush() == b"a***b***c"
    assert all(SECRET.encode() not in piece for piece in emitted)


def test_it_only_holds_back_what_could_start_a_secret() -> None:
    masker = Masker([SECRET])
    assert masker.feed(b"plain line\n") == b"plain line\n"
    assert masker.feed(b"ends with hun") == b"ends with "
    assert masker.feed(b"gry\n") == b"hungry\n"


def test_it_masks_each_line_of_a_multiline_secret() -> None:
    key = "-----BEGIN KEY-----\nAAAABBBBCCCC\n-----END KEY-----"
    out = feed_all(Masker([key]), [b"line: AAAABBBBCCCC\n"])
    assert b"AAAABBBBCCCC" not in out


def test_it_ignores_empty_secrets() -> None:
    assert feed_all(Masker(["", "x" * 0]), [b"unchanged"]) == b"unchanged"


def test_spool_caps_the_log_with_a_visible_marker() -> None:
    spool = LogSpool(Masker([]), cap_bytes=10)
    spool.write(b"0123456789abcdef")
    spool.write(b"more")
    spool.close()
    data = spool.read(0, 1000)
    assert data.startswith(b"0123456789\n[deltaci] log truncated")
    assert b"more" not in data
    spool.discard()
