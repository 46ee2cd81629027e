"""Top-level node (Chongqing primary, Chengdu backup): prefix registry, referral, recursion."""

from resolver.app import create_app

__all__ = ["create_app"]
