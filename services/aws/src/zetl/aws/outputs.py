"""The deployed stack's coordinates, read from ``terraform output -json``."""

from __future__ import annotations

import json
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from zetl.errors import ConfigError


@dataclass(frozen=True)
class StackOutputs:
    """The root outputs of infra/terraform that the promotion steps use (same names)."""

    region: str
    source_endpoint: str
    source_port: int
    source_database: str
    source_username: str
    source_secret_arn: str
    source_identifier: str
    source_final_snapshot: str | None
    warehouse_endpoint: str
    warehouse_port: int
    warehouse_database: str
    warehouse_workgroup: str
    warehouse_namespace: str
    warehouse_username: str
    warehouse_secret_arn: str
    replica_database: str
    integration_arn: str
    integration_identifier: str
    ecr_repositories: dict[str, str]
    image_tag: str
    ecs_cluster: str
    task_definitions: dict[str, str]
    task_images: dict[str, str]
    ecs_services: list[str]
    task_subnet_ids: list[str]
    task_security_group_id: str
    log_group: str
    # The target database's options (Terraform's replica_database_options; None: AWS's default).
    # Optional: outputs written before it existed have none.
    replica_database_options: dict[str, bool | int | None] = field(default_factory=dict)

    @classmethod
    def from_terraform(cls, raw: dict[str, Any]) -> StackOutputs:
        """From the parsed ``terraform output -json`` document ({name: {"value": ...}})."""
        optional = {f.name for f in fields(cls) if f.default_factory is not MISSING}
        missing = [f.name for f in fields(cls) if f.name not in raw and f.name not in optional]
        if missing:
            raise ConfigError(
                "terraform outputs lack " + ", ".join(missing) + ": run `make deploy-aws` "
                "(terraform apply) first, or refresh the outputs file"
            )
        return cls(**{f.name: raw[f.name]["value"] for f in fields(cls) if f.name in raw})

    @classmethod
    def load(cls, path: Path) -> StackOutputs:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(
                f"{path} does not exist: write it with `terraform -chdir=infra/terraform "
                f"output -json > {path}` (make deploy-aws does)"
            ) from exc
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path} is not terraform's JSON output: {exc}") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"{path} is not terraform's JSON output (expected an object)")
        return cls.from_terraform(raw)

    def task_definition(self, task: str) -> str:
        try:
            return self.task_definitions[task]
        except KeyError:
            known = ", ".join(sorted(self.task_definitions))
            raise ConfigError(f"no task {task!r} in the stack; known tasks: {known}") from None
