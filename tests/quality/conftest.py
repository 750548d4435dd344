"""Real-model suite (`make quality`): real llama.cpp servers, small real models.

Every test here is marked `quality` and skipped unless pytest runs with `-m quality`,
so `make test` never starts a model.  `make quality` builds (once, cached outside the
repo) llama-server and the two models, and passes their paths in LLAMA_SERVER,
QUALITY_CHAT_MODEL and QUALITY_EMBED_MODEL.  The servers listen on loopback ports
picked at random and are stopped at the end of the session.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest


def pytest_collection_modifyitems(config, items):
    expr = config.option.markexpr or ""
    if re.search(r"(?<!not )\bquality\b", expr):
        return
    skip = pytest.mark.skip(reason="real-model test: run with `make quality` (pytest -m quality)")
    for item in items:
        if "quality" in item.keywords:
            item.add_marker(skip)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path


def _start(binary: str, args: list[str], log: Path, timeout: float = 180.0) -> Server:
    port = _free_port()
    out = open(log, "wb")
    process = subprocess.Popen([binary, "--host", "127.0.0.1", "--port", str(port), "-t", "2", *args],
                               stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"llama-server exited with {process.returncode}: see {log}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return Server(url, process, log)
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    process.terminate()
    raise RuntimeError(f"llama-server did not become ready in {timeout:.0f} s: see {log}")


def _stop(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()


@pytest.fixture(scope="session")
def llama_servers(tmp_path_factory):
    binary, chat, embed = (os.environ.get(k, "") for k in ("LLAMA_SERVER", "QUALITY_CHAT_MODEL", "QUALITY_EMBED_MODEL"))
    if not (binary and chat and embed):
        pytest.fail("LLAMA_SERVER, QUALITY_CHAT_MODEL and QUALITY_EMBED_MODEL must be set: run `make quality`")
    logs = tmp_path_factory.mktemp("llama-logs")
    chat_server = _start(binary, ["-m", chat, "-c", "4096", "--parallel", "1"], logs / "chat.log")
    try:
        embed_server = _start(binary, ["-m", embed, "--embedding", "--pooling", "mean", "-c", "512",
                                       "-b", "512", "-ub", "512", "--parallel", "1"], logs / "embed.log")
    except BaseException:
        _stop(chat_server)
        raise
    yield {"chat": chat_server.url, "embeddings": embed_server.url}
    _stop(chat_server)
    _stop(embed_server)


@pytest.fixture
def real_models(llama_servers, settings):
    """Settings pointing at the real servers, as a user following the README would set them."""
    settings.INFERENCE_URL = llama_servers["chat"]
    settings.INFERENCE_MODEL = "SmolLM2-135M-Instruct"
    settings.INFERENCE_API_KEY = ""
    settings.EMBEDDINGS_URL = llama_servers["embeddings"]
    settings.EMBEDDINGS_MODEL = "all-MiniLM-L6-v2"
    settings.EMBEDDINGS_API_KEY = ""
    settings.EMBEDDINGS_DIMS = 384
    settings.LLM_CONTEXT_TOKENS = 3000
    settings.LLM_TIMEOUT_SECONDS = 120
    settings.LLM_MAX_RETRIES = 1
    settings.LLM_RETRY_BACKOFF_SECONDS = 0.5
    settings.SEARCH_MIN_SIMILARITY = 0.0
    settings.ELASTIC_URL = ""
    from rediska.llm import forget_tokenizers

    forget_tokenizers()
    return llama_servers


@pytest.fixture(autouse=True)
def _own_index(settings, tmp_path):
    settings.SEARCH_INDEX_PATH = tmp_path / "search-index.sqlite3"
