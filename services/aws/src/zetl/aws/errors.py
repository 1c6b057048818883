"""Turn boto3's exceptions into one-line ZetlErrors that say what was being done."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)

from zetl.errors import ConfigError, DataError

# Error codes that mean the caller, its permissions or its input are wrong (exit 2).
_CONFIG_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredToken",
        "ExpiredTokenException",
        "ValidationException",
        "InvalidParameterValue",
        "InvalidParameterException",
        "InvalidParameterCombination",
        "ClusterNotFoundException",
        "IntegrationNotFoundFault",
        "ResourceNotFoundException",
        "RepositoryNotFoundException",
        "ServiceNotFoundException",
    }
)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


@contextmanager
def aws_errors(doing: str) -> Iterator[None]:
    """Report any AWS failure inside the block as ``<doing>: <what AWS said>``."""
    try:
        yield
    except (NoCredentialsError, PartialCredentialsError) as exc:
        raise ConfigError(
            f"{doing}: no AWS credentials ({exc}); set AWS_PROFILE or run `aws sso login`"
        ) from exc
    except NoRegionError as exc:
        raise ConfigError(
            f"{doing}: no AWS region; set AWS_REGION (or AWS_DEFAULT_REGION)"
        ) from exc
    except EndpointConnectionError as exc:
        raise ConfigError(f"{doing}: cannot reach AWS ({exc}); check the network") from exc
    except ClientError as exc:
        code = error_code(exc)
        message = exc.response.get("Error", {}).get("Message", str(exc))
        kind = ConfigError if code in _CONFIG_CODES else DataError
        raise kind(f"{doing}: {code}: {message}") from exc
    except BotoCoreError as exc:
        raise DataError(f"{doing}: {exc}") from exc
