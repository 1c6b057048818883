"""The replicator's durable state in the replica database: progress, table states, options."""
