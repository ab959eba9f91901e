"""The client side of the lab's live view (``mtasts lab serve-status``): issue fresh test
addresses (with the lab's token) and ask what arrived for one. Used by ``mtasts lab watch``
and ``mtasts lab addresses --lab``; errors are one-line :class:`LabError`s.

The lab answers each client 60 requests a minute (the service and its nginx site): a
refusal (429, or 503 from an nginx that was not told to say 429) is waited out, as its
``Retry-After`` says (RFC 9110 section 10.2.3), a few times before it is an error.
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from collectors.lab.processes import LabError

RATE_LIMITED = (429, 503)
MAX_WAITS = 5
MAX_ANSWER_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class StatusClient:
    """One lab's status service, e.g. ``https://tlsrpt.audit.example.org``."""

    base_url: str
    ca_bundle: str | None = None     # a test lab's private CA; None: the system's trust store
    timeout: float = 15.0

    def issue(self, token: str, provider: str | None = None) -> list[str]:
        """Six fresh addresses, one per lab server, issued (and from now on answered) by the lab."""
        headers = {"Authorization": f"Bearer {token}"}
        if provider:
            headers["X-Provider"] = provider
        answer = self._request("/v1/addresses", data=b"", headers=headers)
        return [entry["address"] for entry in answer["addresses"]]

    def status(self, address: str) -> dict:
        """What arrived for an issued address: its server, arrivals and policy fetches."""
        return self._request(f"/v1/status/{urllib.parse.quote(address.strip(), safe='@')}")

    def _request(self, path: str, *, data: bytes | None = None, headers: dict[str, str] | None = None) -> dict:
        url = self.base_url.rstrip("/") + path
        context = ssl.create_default_context(cafile=self.ca_bundle) if url.startswith("https:") else None
        request = urllib.request.Request(url, data=data, headers=headers or {},
                                         method="POST" if data is not None else "GET")
        for attempt in range(MAX_WAITS + 1):
            try:
                with urllib.request.urlopen(request, timeout=self.timeout, context=context) as response:
                    return json.loads(response.read(MAX_ANSWER_BYTES))
            except urllib.error.HTTPError as error:
                detail = error.read(4096).decode("utf-8", "replace")
                if error.code in RATE_LIMITED and attempt < MAX_WAITS:
                    time.sleep(retry_after(error.headers.get("Retry-After"), attempt))
                    continue
                raise LabError(f"{url}: HTTP {error.code}: {detail.strip()[:200]}") from None
            except (urllib.error.URLError, OSError, ValueError) as error:
                raise LabError(f"{url}: {error}") from None
        raise AssertionError("unreachable")


def retry_after(header: str | None, attempt: int) -> float:
    """Seconds to wait before asking again: the server's ``Retry-After`` (seconds form), else
    2, 4, 8... seconds; never less than half a second or more than a minute."""
    try:
        seconds = float(header) if header else 2.0 ** (attempt + 1)
    except ValueError:
        seconds = 2.0 ** (attempt + 1)
    return min(max(seconds, 0.5), 60.0)
