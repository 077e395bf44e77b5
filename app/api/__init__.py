"""The HTTP edge: one module per protocol, their error mapping, admission and dependencies."""
