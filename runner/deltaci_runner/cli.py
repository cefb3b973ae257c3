"""`deltaci-runner`: parse arguments, prepare directories and the sandbox, run the agent."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

from deltaci_runner import __version__, capabilities, executor, jlog, leftovers
from deltaci_runner.agent import Agent, AgentConfig, FatalError
from deltaci_runner.jobuser import JobUserError, resolve
from deltaci_runner.limits import parse_memory


def default_base() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/deltaci-runner")
    data_home = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return Path(data_home) / "deltaci-runner"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deltaci-runner", description="Delta CI reference runner."
    )
    parser.add_argument("--url", required=True, help="control plane base URL")
    parser.add_argument(
        "--registration-token",
        default=os.environ.get("DELTACI_REGISTRATION_TOKEN"),
        help="used once to register (default: $DELTACI_REGISTRATION_TOKEN)",
    )
    parser.add_argument("--state-dir", type=Path, help="registration state (mode 0700)")
    parser.add_argument("--name", default=socket.gethostname(), help="runner name")
    parser.add_argument("--work-dir", type=Path, help="parent of per-job workspaces")
    parser.add_argument("--cache-dir", type=Path, help="local job caches")
    parser.add_argument(
        "--cache-max-size",
        default="10Gi",
        help="evict least recently used caches beyond this size (e.g. 500Mi, 20Gi; default 10Gi)",
    )
    parser.add_argument(
        "--executor",
        choices=("shell", "bwrap", "oci"),
        help="default: bwrap when it works here; oci runs each job in a container of its image",
    )
    parser.add_argument(
        "--container-cli", help="with --executor oci: podman or docker (default: podman, docker)"
    )
    parser.add_argument(
        "--pull",
        choices=("always", "missing", "never"),
        default="missing",
        help="with --executor oci: when to pull a job's image (default missing)",
    )
    parser.add_argument("--job-user", help="user for job processes when run as root")
    parser.add_argument("--once", action="store_true", help="exit after one job")
    parser.add_argument(
        "--max-idle-seconds",
        type=float,
        help="exit 0 after this long without a job (single-use pods an autoscaler starts)",
    )
    parser.add_argument(
        "--label", action="append", default=[], help="extra capability (repeatable)"
    )
    parser.add_argument(
        "--wait-seconds", type=int, default=20, help="lease long-poll wait (0-20, default 20)"
    )
    parser.add_argument("--version", action="version", version=__version__)
    return parser


def prepare_dirs(args: argparse.Namespace) -> tuple[Path, Path, Path]:
    base = default_base()
    state_dir = (args.state_dir or base / "state").absolute()
    work_dir = (args.work_dir or base / "work").absolute()
    cache_dir = (args.cache_dir or base / "cache").absolute()
    for path, mode in ((state_dir, 0o700), (cache_dir, 0o700), (work_dir, 0o755)):
        existed = path.exists()
        path.mkdir(mode=mode, parents=True, exist_ok=True)
        if not existed or path in (state_dir, cache_dir):
            os.chmod(path, mode)
    return state_dir, work_dir, cache_dir


def install_signal_handlers(shutdown: threading.Event) -> None:
    def handle(signum: int, _frame: FrameType | None) -> None:
        shutdown.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    jlog.setup()
    log = jlog.get_logger()
    url = args.url.rstrip("/")
    if urlsplit(url).scheme not in ("http", "https"):
        log.error("--url must be an http(s) URL")
        return 2
    if args.max_idle_seconds is not None and not 0 <= args.max_idle_seconds <= 86400:
        log.error("--max-idle-seconds must be between 0 and 86400")
        return 2
    cache_max_bytes = parse_memory(args.cache_max_size)
    if cache_max_bytes is None:
        log.error("--cache-max-size must be a size such as 500Mi or 20Gi")
        return 2
    try:
        user = resolve(args.job_user)
        chosen, warning = executor.select(args.executor, user, args.container_cli, args.pull)
        state_dir, work_dir, cache_dir = prepare_dirs(args)
    except (JobUserError, executor.ExecutorError, OSError) as exc:
        log.error("cannot start", error=str(exc))
        return 2
    if warning:
        log.warning(warning)
    if not user.can_enter(work_dir):
        log.error("job user cannot enter the work dir", user=user.name, work_dir=str(work_dir))
        return 2
    caps = capabilities.detect(
        chosen.name, args.label, chosen.job_path, visible_roots=chosen.visible_roots
    )
    log.info(
        "runner starting",
        version=__version__,
        executor=chosen.name,
        job_uid=user.uid,
        capabilities=caps,
    )
    config = AgentConfig(
        url=url,
        name=args.name,
        state_dir=state_dir,
        work_dir=work_dir,
        cache_dir=cache_dir,
        cache_max_bytes=cache_max_bytes,
        capabilities=caps,
        registration_token=args.registration_token,
        wait_seconds=max(0, min(args.wait_seconds, 20)),
        once=args.once,
        max_idle_seconds=args.max_idle_seconds,
    )
    shutdown = threading.Event()
    install_signal_handlers(shutdown)
    leftovers.become_subreaper()  # what jobs double-fork stays ours until each job's end
    try:
        return Agent(config, chosen, user, shutdown, log).run()
    except FatalError as exc:
        log.error(str(exc))
        return 2


if __name__ == "__main__":
    sys.exit(main())
