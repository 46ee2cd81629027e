"""Read a node's JSON answer: the body on success, else the Handle error it names."""

from __future__ import annotations

from typing import Any

import requests

from idcore.errors import HandleError, error_for_code


def json_answer(resp: requests.Response, what: str) -> dict[str, Any]:
    """The JSON body of a 2xx answer; otherwise raise the error class of its responseCode."""
    try:
        body: dict[str, Any] = resp.json()
    except ValueError:
        raise HandleError(f"{what}: HTTP {resp.status_code} without JSON") from None
    if resp.status_code >= 300:
        code = int(body.get("responseCode", 2))
        raise error_for_code(code)(
            f"{what}: {body.get('message', resp.reason)}", body.get("handle")
        )
    return body
