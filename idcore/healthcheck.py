"""Container healthcheck: exit 0 once this node answers /_emulator/ready (no curl in the image).

`python -m idcore.healthcheck` reads the same IDR_* settings as the node it checks, so one
command serves every node of docker-compose.yml; it asks the node on 127.0.0.1, its own port.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

from idcore.settings import NodeSettings

TIMEOUT = 3.0


def ready_url(settings: NodeSettings) -> str:
    """The readiness URL of the node these settings describe, on the loopback interface."""
    return f"http://127.0.0.1:{settings.spec().port}/_emulator/ready"


def main() -> int:
    """0 if the node is ready, 1 otherwise (the reason on stderr)."""
    url = ready_url(NodeSettings())
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as resp:
            status = int(resp.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"{url}: HTTP {status} (not ready)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
