"""System tests: whole nodes and hierarchies over HTTP."""
