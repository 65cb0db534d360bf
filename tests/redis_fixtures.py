"""A real ``redis-server`` for the tests, imported by conftest.py.

``redis_url``: ``$SOMA_TEST_REDIS_URL`` when set (CI may start one), else a ``redis-server``
started here on a free port in a temporary folder (no persistence) and stopped at the end
of the run. Without either, tests that need Redis are skipped with the command that
installs it. Tests isolate themselves with a unique key prefix (``redis_prefix``), not by
flushing, so a shared server is safe.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

INSTALL = "apt-get update && apt-get install -y redis-server"
# Read at import: the soma_home fixture hides SOMA_* variables from the tests.
GIVEN_URL = os.environ.get("SOMA_TEST_REDIS_URL")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis_server(folder: Path, port: int | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``redis-server`` on a free port; returns (process, URL). Raises if it does not
    answer within 10 s."""
    import redis

    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError(f"redis-server is not installed ({INSTALL})")
    port = port or free_port()
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [
            binary,
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--dir", str(folder),
            "--save", "",
            "--appendonly", "no",
            "--protected-mode", "yes",
            "--logfile", str(folder / "redis.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url, socket_connect_timeout=0.2)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.RedisError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                log = (
                    (folder / "redis.log").read_text(errors="replace")[-2000:]
                    if (folder / "redis.log").exists()
                    else ""
                )
                raise RuntimeError(f"redis-server did not start on port {port}: {log}") from None
            time.sleep(0.05)
    client.close()
    return proc, url


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a running Redis for this test run."""
    import redis  # noqa: F401  (a dependency of the project: its absence is a failure)

    if GIVEN_URL:
        yield GIVEN_URL
        return
    # No redis-server: the Redis tests fail (FileNotFoundError naming the fix), never skip.
    proc, url = start_redis_server(tmp_path_factory.mktemp("redis"))
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix of this test's own."""
    return f"t{uuid.uuid4().hex[:12]}"
