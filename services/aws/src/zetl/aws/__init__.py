"""Promotion to AWS: the steps `make deploy-aws` runs after `terraform apply`.

Each step is a small function over a boto3 client (so tests hand it a moto-backed or a
Stubber-backed client) with explicit timeouts, and every AWS failure surfaces as a ZetlError
that says what was being done and what to check. ``zetl.aws.cli`` exposes them as
``zetl aws ...`` commands; the stack's coordinates come from ``terraform output -json``.
"""
