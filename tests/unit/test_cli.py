"""The command line on the embedded default: migrate, seed the demo, manage keys, serve."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


def run(cwd: Path, *args: str) -> list[str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "EXCHANGE_DATABASE_URL")
    }
    done = subprocess.run(
        [sys.executable, "-m", "exchange", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("embedded")
    assert run(folder, "migrate") == ["database at head"]
    assert (folder / "exchange.db").exists(), "the embedded default is a SQLite file in the cwd"
    return folder


def test_seed_demo_prints_keys_that_work_and_revokes_the_previous_ones(workdir):
    first = [line.split()[-1] for line in run(workdir, "seed-demo")[1:]]
    second = [line.split()[-1] for line in run(workdir, "seed-demo")[1:]]
    assert len(first) == len(second) == 5
    assert all(token.startswith("exk.") for token in first + second)
    listed = run(workdir, "keys", "list")
    active = [line for line in listed if " active " in line]
    assert len(active) == 5
    assert {t.split(".")[1] for t in second} == {line.split()[0] for line in active}


def test_keys_create_prints_the_key_alone_on_the_last_line_and_revoke_works(workdir):
    lines = run(workdir, "keys", "create", "--role", "auditor", "--name", "ci")
    token = lines[-1]
    assert token.startswith("exk.") and " " not in token
    key_id = token.split(".")[1]
    assert any(
        line.startswith(key_id) and "active" in line for line in run(workdir, "keys", "list")
    )
    assert run(workdir, "keys", "revoke", key_id) == [f"revoked {key_id}"]
    assert any(
        line.startswith(key_id) and "revoked" in line for line in run(workdir, "keys", "list")
    )


def test_keys_create_for_a_member_needs_a_known_party(workdir):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "exchange",
            "keys",
            "create",
            "--role",
            "member",
            "--party",
            "nobody",
        ],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "no party nobody" in done.stderr


def test_serve_answers_on_the_embedded_database(workdir):
    run(workdir, "seed-demo")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    server = subprocess.Popen(
        [sys.executable, "-m", "exchange", "serve", "--port", str(port)],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        assert ready.status_code == 200
        token = run(workdir, "keys", "create", "--role", "operator")[-1]
        account = httpx.get(
            f"http://127.0.0.1:{port}/v1/ledger/accounts/demo-enterprise-available-cny",
            headers={"Authorization": f"Bearer {token}"},
            timeout=5,
        )
        assert account.status_code == 200
        assert account.json()["owner"] == {"type": "party", "id": "demo-enterprise"}
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_docking_rebuild_builds_an_index_and_tells_the_api_processes(workdir):
    run(workdir, "seed-demo")
    [line] = run(workdir, "docking-rebuild")
    assert line.startswith("docking index rebuilt: ")
