"""Small HTTP helpers for tests (real requests on loopback)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any


def get(url: str, timeout: float = 60.0) -> tuple[int, bytes, dict[str, str]]:
    """GET ``url``: status, body, headers (HTTP errors are returned, not raised)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def get_json(url: str, timeout: float = 60.0) -> tuple[int, Any]:
    status, body, _ = get(url, timeout)
    return status, json.loads(body)


def burst(urls: list[str], timeout: float = 60.0) -> list[tuple[int, Any]]:
    """All ``urls`` at once, one thread each."""
    with ThreadPoolExecutor(len(urls)) as pool:
        return list(pool.map(lambda u: get_json(u, timeout), urls))
