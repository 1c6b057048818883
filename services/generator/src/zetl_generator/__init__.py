"""zetl generator: a realistic, rule-abiding workload for the source database, and exports."""
