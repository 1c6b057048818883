"""The source side: the replication stream (pgoutput, receiver), the server's publication and
slot, and the catalog: which tables there are and which zero-ETL replicates."""
