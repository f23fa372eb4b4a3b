"""The API under uvicorn with several worker processes, on a free loopback port, against the
test run's database: what the PostgreSQL concurrency tests talk to."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from exchange.config import Settings

SERVER_READY_S = 30.0


@dataclass(frozen=True)
class Server:
    base_url: str
    log_path: Path
    worker_pids: list[int]

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def worker_pids(parent_pid: int) -> list[int]:
    """uvicorn's worker processes: the children of `parent_pid` started by multiprocessing."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue  # it ended meanwhile
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == parent_pid and b"spawn_main" in cmdline:
            found.append(int(entry.name))
    return sorted(found)


def _wait_ready(process: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_READY_S
    with httpx.Client(base_url=base_url, timeout=2.0) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                log = log_path.read_text(errors="replace")[-4000:]
                raise AssertionError(f"the server exited with {process.returncode}:\n{log}")
            try:
                if http.get("/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    raise AssertionError(f"the server was not ready within {SERVER_READY_S} s")


@contextmanager
def serve(settings: Settings, log_path: Path, *, workers: int, pool_size: int) -> Iterator[Server]:
    """`python -m exchange serve --workers N` on the test database, its worker loop off (what
    is due is done lazily, raced by the clients), until the block ends."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k != "EXCHANGE_DATABASE_URL"}
    env.update(
        DATABASE_URL=settings.database_url,
        EXCHANGE_RUN_WORKER="false",
        EXCHANGE_LOG_LEVEL="WARNING",
        EXCHANGE_DB_POOL_SIZE=str(pool_size),
        EXCHANGE_EVIDENCE_DIR=settings.evidence_dir,
    )
    command = [sys.executable, "-m", "exchange", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", str(workers)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_ready(process, base_url, log_path)
        yield Server(base_url, log_path, worker_pids(process.pid))
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
