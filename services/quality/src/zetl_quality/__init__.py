"""zetl data quality: great_expectations checkpoints over the source, the replica and the marts."""
