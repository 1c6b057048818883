"""Operating the replicator: its commands, doctor, verify, monitoring views and metrics."""
