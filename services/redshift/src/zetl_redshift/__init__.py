"""zetl's Redshift front: a Postgres wire-protocol server that speaks to clients as Redshift
does (startup, TLS, authentication, catalog) and relays to the warehouse Postgres, translating
each statement from Redshift SQL into Postgres SQL on the way."""
