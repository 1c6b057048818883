"""Applying the stream: the apply loop, streamed transactions, the registry of replicated
tables, net changes per key and schema changes."""
