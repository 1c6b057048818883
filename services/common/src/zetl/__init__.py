"""zetl: a local-first RDS for PostgreSQL → Redshift Serverless zero-ETL platform."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("zetl")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
