"""zetl: a local-first RDS for PostgreSQL → Redshift Serverless zero-ETL platform."""

from importlib.metadata import PackageNotFoundError, version
from pkgutil import extend_path

# zetl.schema (services/schema) and zetl.aws (services/aws) are installed by their own
# distributions, so that an image gets SQLAlchemy or boto3 only when it uses them; in an
# editable install each lives in its own source directory, which this joins to the package.
__path__ = extend_path(__path__, __name__)

try:
    __version__ = version("zetl")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
