"""Assert the zero-ETL wiring on a real `terraform show -json` plan (see plan-offline.sh).

Usage: check_plan.py PLAN.json default|public CREATOR
Exits 1 with one line per broken expectation.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ZERO_ETL = {
    "rds.logical_replication": "1",
    "rds.replica_identity_full": "1",
    "session_replication_role": "origin",
    "wal_sender_timeout": "0",
    "max_wal_senders": "20",
    "max_replication_slots": "20",
}


def planned(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [rc for rc in plan["resource_changes"] if rc["change"]["actions"] == ["create"]]


def one(changes: list[dict[str, Any]], rtype: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [rc["change"]["after"] for rc in changes if rc["type"] == rtype]
    if len(found) != 1:
        raise SystemExit(f"expected one {rtype} in the plan, found {len(found)}")
    return found[0]


def check(plan: dict[str, Any], scenario: str, creator: str) -> list[str]:
    problems: list[str] = []
    changes = planned(plan)

    def expect(ok: bool, message: str) -> None:
        if not ok:
            problems.append(message)

    expect(len(changes) > 50, f"only {len(changes)} resources planned")
    for rc in changes:
        after = rc["change"]["after"] or {}
        if "tags_all" in after or "tags" in after:
            tags = after.get("tags_all") or after.get("tags") or {}
            expect(tags.get("creator") == creator, f"{rc['address']}: creator tag {tags}")
            expect(tags.get("project") == "zetl", f"{rc['address']}: no project tag")
        if rc["type"] == "aws_vpc_security_group_ingress_rule":
            expect(
                after.get("cidr_ipv4") not in ("0.0.0.0/0",)
                and after.get("cidr_ipv6") not in ("::/0",),
                f"{rc['address']}: open to the internet",
            )

    group = one(changes, "aws_db_parameter_group")
    values = {p["name"]: p["value"] for p in group["parameter"]}
    for name, value in ZERO_ETL.items():
        expect(values.get(name) == value, f"parameter {name} = {values.get(name)!r}, want {value}")

    db = one(changes, "aws_db_instance")
    expect(db["storage_encrypted"] is True, "source storage not encrypted")
    expect(db["manage_master_user_password"] is True, "source password not in Secrets Manager")
    expect(db["backup_retention_period"] >= 1, "source without automated backups")
    expect(db["publicly_accessible"] is (scenario == "public"), "source public access")

    workgroup = one(changes, "aws_redshiftserverless_workgroup")
    params = {p["parameter_key"]: p["parameter_value"] for p in workgroup["config_parameter"]}
    expect(params.get("enable_case_sensitive_identifier") == "true", "case sensitivity off")
    expect(params.get("require_ssl") == "true", "SSL not required")
    expect(workgroup["publicly_accessible"] is False, "workgroup is public")
    expect(workgroup["base_capacity"] == 8, "base capacity is not the lowest")

    integration = one(changes, "aws_rds_integration")
    expect(integration["data_filter"] == "include: storefront.public.*", "data filter")

    cidrs = [
        rc["change"]["after"].get("cidr_ipv4")
        for rc in changes
        if rc["type"] == "aws_vpc_security_group_ingress_rule"
    ]
    want = ["203.0.113.10/32"] if scenario == "public" else []
    expect([c for c in cidrs if c] == want, f"CIDR ingress {cidrs}, want {want}")
    nats = [rc for rc in changes if rc["type"] == "aws_nat_gateway"]
    expect(len(nats) == 1, f"{len(nats)} NAT gateways planned, want 1")
    return problems


def main() -> int:
    path, scenario, creator = sys.argv[1:4]
    problems = check(json.loads(Path(path).read_text(encoding="utf-8")), scenario, creator)
    for problem in problems:
        print(f"plan ({scenario}): {problem}")
    print(f"plan ({scenario}): {'FAILED' if problems else 'ok'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
