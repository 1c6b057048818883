"""Helpers of the zetl_daily DAG: settings, the replication gate, the run record.

Plain Python (psycopg2 and the standard library only) so the same code runs in any Airflow
deployment whose DAG folder holds it, Amazon MWAA included, and tests can call it directly.
"""
