"""The client side: Resolver and tracer library, the `idr` CLI, QR labels and scanning."""

from clients.resolver import ResolvedRecord as ResolvedRecord
from clients.resolver import Resolver as Resolver
from clients.trace_result import Trace as Trace
from clients.trace_result import TraceError as TraceError
from clients.trace_result import TraceRecord as TraceRecord
from clients.tracer import trace as trace
from clients.trust import Anchor as Anchor
from clients.trust import Verdict as Verdict
from clients.trust import Verifier as Verifier

__all__ = [
    "Anchor",
    "ResolvedRecord",
    "Resolver",
    "Trace",
    "TraceError",
    "TraceRecord",
    "Verdict",
    "Verifier",
    "trace",
]
