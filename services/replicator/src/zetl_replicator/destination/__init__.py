"""Where changes land: the destination interface, the Postgres destination, the SQL it sends
and HISTORY_MODE's versions."""
