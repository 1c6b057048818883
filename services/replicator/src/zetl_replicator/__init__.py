"""zetl replicator: zero-ETL emulated with Postgres logical replication (generic CDC)."""
