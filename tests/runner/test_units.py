"""Small pure pieces: limits parsing, egress host matching, capabilities, state file."""

import os
import stat
from pathlib import Path

from deltaci_runner import capabilities, state
from deltaci_runner.limits import parse_cpu, parse_memory
from deltaci_runner.proxy import (
    EXACT,
    WILDCARD,
    address_admitted,
    host_allowed,
    host_rule,
    split_host_port,
)


def test_it_parses_memory_limits() -> None:
    assert parse_memory("4Gi") == 4 * 1024**3
    assert parse_memory("512Mi") == 512 * 1024**2
    assert parse_memory("1G") == 10**9
    assert parse_memory("1048576") == 1048576
    assert parse_memory(None) is None
    assert parse_memory("lots") is None
    assert parse_memory(" 2 Gi \n") == 2 * 1024**3
    assert parse_memory("1.5kb") == 1500


def test_a_hostile_memory_limit_is_rejected_quickly() -> None:
    # Blanks at both ends of the pattern split this run every way: 10 s before stripping.
    assert parse_memory("1" + " " * 65_536 + "x") is None


def test_it_parses_cpu_limits() -> None:
    assert parse_cpu("2") == 2
    assert parse_cpu("1.5") == 2
    assert parse_cpu("500m") == 1
    assert parse_cpu("") is None
    assert parse_cpu("many") is None


def test_it_matches_egress_hosts_exactly_or_by_suffix() -> None:
    allow = ["pypi.org", "*.pythonhosted.org"]
    assert host_allowed("pypi.org", allow)
    assert host_allowed("PyPI.org.", allow)
    assert host_allowed("files.pythonhosted.org", allow)
    assert not host_allowed("pythonhosted.org", allow)
    assert not host_allowed("evilpypi.org", allow)
    assert not host_allowed("pypi.org.evil.com", allow)
    assert not host_allowed("", allow)


def test_an_exact_entry_wins_over_a_wildcard_one() -> None:
    assert host_rule("a.example.com", ["*.example.com", "a.example.com"]) == EXACT
    assert host_rule("a.example.com", ["a.example.com", "*.example.com"]) == EXACT
    assert host_rule("b.example.com", ["*.example.com", "a.example.com"]) == WILDCARD
    assert host_rule("example.com", ["*.example.com"]) is None


def test_special_addresses_are_never_reached_and_internal_ones_only_when_named() -> None:
    for never in ("169.254.169.254", "fe80::1", "0.0.0.0", "::", "224.0.0.1", "240.0.0.1"):
        assert not address_admitted(never, EXACT), never
        assert not address_admitted(never, WILDCARD), never
    internal = ("127.0.0.1", "::1", "::ffff:127.0.0.1", "10.1.2.3", "192.168.0.9", "fd00::5")
    for address in (*internal, "100.64.0.1", "::ffff:169.254.169.254"):
        assert not address_admitted(address, WILDCARD), address
    for address in internal:
        assert address_admitted(address, EXACT), address
    assert not address_admitted("::ffff:169.254.169.254", EXACT)
    for public in ("151.101.0.223", "2a04:4e42::223"):
        assert address_admitted(public, WILDCARD) and address_admitted(public, EXACT)
    assert not address_admitted("not-an-address", EXACT)


def test_it_splits_authorities() -> None:
    assert split_host_port("example.com:8443", 443) == ("example.com", 8443)
    assert split_host_port("example.com", 80) == ("example.com", 80)
    assert split_host_port("[::1]:8080", 80) == ("::1", 8080)


def test_it_advertises_executor_os_arch_tools_and_labels() -> None:
    caps = capabilities.detect("bwrap", ["gpu"], os.environ["PATH"])
    assert caps[:2] == ["executor:bwrap", "os:linux"]
    assert caps[2] in ("arch:amd64", "arch:arm64") or caps[2].startswith("arch:")
    assert "tool:git" in caps
    assert caps[-1] == "gpu"


def test_it_only_advertises_tools_a_sandbox_can_see(tmp_path: Path) -> None:
    fake = tmp_path / "go"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert capabilities.find_tools(str(tmp_path)) == ["go"]
    assert capabilities.find_tools(str(tmp_path), visible_roots=("/usr",)) == []


def test_it_stores_the_registration_privately(tmp_path: Path) -> None:
    reg = state.Registration(url="http://127.0.0.1:1", runner_id="r1", token="tok")
    state.save(tmp_path / "state", reg)
    path = tmp_path / "state" / state.FILENAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    assert state.load(tmp_path / "state", "http://127.0.0.1:1") == reg
    assert state.load(tmp_path / "state", "http://127.0.0.1:2") is None


def test_cache_eviction_sweeps_old_leftovers_of_crashed_saves_only(tmp_path: Path) -> None:
    import time

    from deltaci_runner.caches import CacheStore

    old, fresh = tmp_path / ".tmp-old", tmp_path / ".tmp-fresh"
    for leftover in (old, fresh):
        leftover.mkdir()
        (leftover / "part.tar").write_bytes(b"x" * 100)
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(old, (two_days_ago, two_days_ago))
    entry = tmp_path / "e1"
    entry.mkdir()
    (entry / "meta.json").write_text('{"key": "k1"}')
    assert CacheStore(tmp_path, max_bytes=10**6).evict() == []
    assert not old.exists() and fresh.exists() and entry.exists()
    assert CacheStore(tmp_path, max_bytes=1).evict() == ["k1"]
    assert not entry.exists() and not list(tmp_path.glob(".tmp-evict-*"))
