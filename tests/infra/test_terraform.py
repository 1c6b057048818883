"""The Terraform stack's wiring, read statically (no terraform, no AWS, no registry here).

What `terraform validate` and `plan` would catch about the zero-ETL requirements is asserted
on the parsed HCL instead: the parameter group, the integration's ends, the target's resource
policy, encryption, tags, ingress and public access.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.infra.terraform import MODULES, ROOT, load, module, statements

# Resource types whose AWS API takes no tags (checked against the AWS provider 6 schema);
# every other type this stack uses must carry the tags map. A new type must be classified.
UNTAGGABLE = {
    "aws_ecr_lifecycle_policy",
    "aws_iam_role_policy",
    "aws_kms_alias",
    "aws_redshift_resource_policy",
    "aws_route_table_association",
}
TAGGABLE = {
    "aws_cloudwatch_log_group", "aws_db_instance", "aws_db_parameter_group",
    "aws_db_subnet_group", "aws_default_security_group", "aws_ecr_repository",
    "aws_ecs_cluster", "aws_ecs_service", "aws_ecs_task_definition", "aws_eip", "aws_flow_log",
    "aws_iam_role", "aws_internet_gateway", "aws_kms_key", "aws_nat_gateway",
    "aws_rds_integration", "aws_redshiftserverless_namespace",
    "aws_redshiftserverless_workgroup", "aws_route_table", "aws_security_group", "aws_subnet",
    "aws_vpc", "aws_vpc_security_group_egress_rule", "aws_vpc_security_group_ingress_rule",
}  # fmt: skip


def all_stacks() -> list[tuple[str, Any]]:
    return [(".", load())] + [(m, module(m)) for m in MODULES]


# --- layout and interfaces ---


@pytest.mark.parametrize("name", MODULES)
def test_every_module_has_its_files(name: str) -> None:
    files = {p.name for p in (ROOT / "modules" / name).iterdir()}
    assert {"main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md"} <= files


def test_root_has_example_vars_backend_and_readme() -> None:
    for name in ("terraform.tfvars.example", "backend.tf.example", "README.md", "versions.tf"):
        assert (ROOT / name).is_file(), name
    assert 'backend "s3"' in (ROOT / "backend.tf.example").read_text()


@pytest.mark.parametrize("name", MODULES)
def test_module_inputs_are_described_typed_and_validated(name: str) -> None:
    variables = module(name).variables
    for var, spec in variables.items():
        assert spec.get("description"), f"{name}: variable {var} has no description"
        assert "type" in spec, f"{name}: variable {var} has no type"
    validated = [v for v, spec in variables.items() if spec.get("validation")]
    assert {"name", "tags"} <= set(validated), f"{name}: name and tags must be validated"


def test_root_passes_only_declared_inputs_and_every_required_one() -> None:
    for call, args in load().modules.items():
        declared = module(call).variables
        passed = {k for k in args if k not in ("source", "depends_on", "providers")}
        assert passed <= set(declared), f"module {call}: unknown inputs {passed - set(declared)}"
        required = {v for v, spec in declared.items() if "default" not in spec}
        assert required <= passed, f"module {call}: required inputs missing {required - passed}"


def test_every_module_output_the_root_reads_exists() -> None:
    root = load()
    used = set(re.findall(r"\bmodule\.(\w+)\.(\w+)", root.text))
    assert used, "the root reads no module outputs"
    for call, output in used:
        assert output in module(call).outputs, f"module.{call}.{output} is not an output"


@pytest.mark.parametrize(("where", "stack"), all_stacks())
def test_every_output_is_described(where: str, stack: Any) -> None:
    for name, spec in stack.outputs.items():
        assert spec.get("description"), f"{where}: output {name} has no description"


def test_root_outputs_every_endpoint() -> None:
    outputs = load().outputs
    for name in (
        "source_endpoint", "source_port", "warehouse_endpoint", "warehouse_port",
        "ecr_repositories", "ecs_cluster", "integration_arn", "integration_identifier",
        "log_group",
    ):  # fmt: skip
        assert name in outputs, name


# --- the zero-ETL requirements ---


def test_parameter_group_sets_every_zero_etl_parameter() -> None:
    db = module("source_database")
    params = db.locals["zero_etl_parameters"]
    fixed = {name: spec["value"] for name, spec in params.items()}
    assert fixed["rds.logical_replication"] == "1"
    assert fixed["rds.replica_identity_full"] == "1"
    assert fixed["session_replication_role"] == "origin"
    assert fixed["wal_sender_timeout"] == "0"  # 0 or at least 20000
    # The two limits come from variables that default to, and must be, at least 20.
    for name in ("max_wal_senders", "max_replication_slots"):
        assert fixed[name] == f"${{tostring(var.{name})}}"
        spec = db.variables[name]
        assert spec["default"] >= 20
        assert f"var.{name} >= 20" in spec["validation"][0]["condition"]
    # Static parameters apply at the first boot only.
    for name in ("rds.logical_replication", "max_wal_senders", "max_replication_slots"):
        assert params[name]["apply_method"] == "pending-reboot"

    group = db.resource("aws_db_parameter_group")
    dynamic = group["dynamic"][0]["parameter"]
    assert "local.zero_etl_parameters" in dynamic["for_each"]
    assert group["family"] == "postgres${local.engine_major}"
    instance = db.resource("aws_db_instance")
    assert instance["parameter_group_name"] == "${aws_db_parameter_group.this.name}"


def test_source_is_a_supported_postgres_with_backups() -> None:
    db = module("source_database")
    instance = db.resource("aws_db_instance")
    assert instance["engine"] == "postgres"
    version = db.variables["engine_version"]
    assert version["default"] in {"15", "16", "17"}
    assert "(15|16|17)" in version["validation"][0]["condition"]
    assert instance["backup_retention_period"] == "${var.backup_retention_days}"
    assert db.variables["backup_retention_days"]["default"] >= 1
    assert (
        "var.backup_retention_days >= 1"
        in (db.variables["backup_retention_days"]["validation"][0]["condition"])
    )


def test_source_password_lives_in_secrets_manager() -> None:
    instance = module("source_database").resource("aws_db_instance")
    assert instance["manage_master_user_password"] is True
    assert "password" not in instance
    assert instance["master_user_secret_kms_key_id"] == "${module.key.arn}"


def test_warehouse_is_case_sensitive_and_requires_ssl() -> None:
    wh = module("warehouse")
    workgroup = wh.resource("aws_redshiftserverless_workgroup")
    params = {p["parameter_key"]: p["parameter_value"] for p in workgroup["config_parameter"]}
    assert params["enable_case_sensitive_identifier"] == "true"
    assert params["require_ssl"] == "true"
    assert workgroup["enhanced_vpc_routing"] is False
    namespace = wh.resource("aws_redshiftserverless_namespace")
    assert namespace["manage_admin_password"] is True
    assert workgroup["namespace_name"] == "${aws_redshiftserverless_namespace.this.namespace_name}"


def test_integration_replicates_the_source_into_the_namespace() -> None:
    integration = module("integration").resource("aws_rds_integration")
    assert integration["source_arn"] == "${var.source_arn}"
    assert integration["target_arn"] == "${var.target_arn}"
    assert integration["data_filter"] == "${var.data_filter}"
    assert integration["kms_key_id"] == "${module.key.arn}"
    assert "${aws_redshift_resource_policy.this}" in integration["depends_on"]

    wiring = load().modules["integration"]
    assert wiring["source_arn"] == "${module.source_database.arn}"
    assert wiring["target_arn"] == "${module.warehouse.namespace_arn}"
    assert module("source_database").outputs["arn"]["value"] == "${aws_db_instance.this.arn}"
    assert module("warehouse").outputs["namespace_arn"]["value"] == (
        "${aws_redshiftserverless_namespace.this.arn}"
    )
    default_filter = module("integration").variables["data_filter"]["default"]
    assert re.fullmatch(r"include: \w+\.\w+\.\*", default_filter)


def test_resource_policy_authorizes_exactly_the_source() -> None:
    integration = module("integration")
    policy = integration.resource("aws_redshift_resource_policy")
    assert policy["resource_arn"] == "${var.target_arn}"
    assert policy["policy"] == "${data.aws_iam_policy_document.target.json}"
    by_sid = statements(integration.data["aws_iam_policy_document"]["target"])

    authorize = by_sid["AuthorizeSourceDatabase"]
    assert authorize["actions"] == ["redshift:AuthorizeInboundIntegration"]
    assert authorize["principals"] == [
        {"type": "Service", "identifiers": ["redshift.amazonaws.com"]}
    ]
    assert authorize["condition"] == [
        {"test": "StringEquals", "variable": "aws:SourceArn", "values": ["${var.source_arn}"]}
    ]

    create = by_sid["AccountCreatesIntegration"]
    assert create["actions"] == ["redshift:CreateInboundIntegration"]
    assert create["principals"] == [{"type": "AWS", "identifiers": ["${local.root_arn}"]}]
    assert integration.locals["root_arn"].endswith(":iam::${local.account_id}:root")


def test_integration_key_serves_both_services_of_this_account_only() -> None:
    key = module("integration").modules["key"]
    assert key["source"] == "../kms"
    (services,) = key["service_grants"]
    assert services["sid"] == "ZeroEtlServicesUseKey"
    assert set(services["services"]) == {"rds.amazonaws.com", "redshift.amazonaws.com"}
    assert "kms:CreateGrant" in services["actions"]
    assert services["condition"]["variable"] == "aws:SourceAccount"


def test_kms_module_grants_services_beside_the_account() -> None:
    by_sid = statements(module("kms").data["aws_iam_policy_document"]["key"])
    assert by_sid["AccountAdministers"]["principals"] == [
        {"type": "AWS", "identifiers": ["${local.root_arn}"]}
    ]
    grant = module("kms").data["aws_iam_policy_document"]["key"]["dynamic"][0]["statement"]
    assert grant["for_each"] == "${var.service_grants}"
    assert grant["content"][0]["principals"][0]["type"] == "Service"


# --- encryption ---


def test_storage_secrets_images_and_logs_are_encrypted() -> None:
    db = module("source_database").resource("aws_db_instance")
    assert db["storage_encrypted"] is True
    assert db["kms_key_id"] == "${module.key.arn}"
    namespace = module("warehouse").resource("aws_redshiftserverless_namespace")
    assert namespace["kms_key_id"] == "${module.key.arn}"
    assert namespace["admin_password_secret_kms_key_id"] == "${module.key.arn}"
    repo = module("app").resource("aws_ecr_repository")
    assert repo["encryption_configuration"][0]["encryption_type"] == "KMS"
    for _, stack in all_stacks():
        for name, group in stack.resources.get("aws_cloudwatch_log_group", {}).items():
            assert group.get("kms_key_id"), f"log group {name} is not encrypted with a key"


@pytest.mark.parametrize(("where", "stack"), all_stacks())
def test_every_kms_key_rotates(where: str, stack: Any) -> None:
    for name, key in stack.resources.get("aws_kms_key", {}).items():
        assert key["enable_key_rotation"] is True, f"{where}: aws_kms_key.{name}"
        assert key.get("policy"), f"{where}: aws_kms_key.{name} has no explicit policy"


# --- tags ---


@pytest.mark.parametrize(("where", "stack"), all_stacks())
def test_every_taggable_resource_carries_the_tags_map(where: str, stack: Any) -> None:
    for rtype, name, body in stack.all_resources():
        assert rtype in TAGGABLE | UNTAGGABLE, f"classify {rtype} as taggable or not"
        if rtype in TAGGABLE:
            assert "var.tags" in str(body.get("tags", "")), f"{where}: {rtype}.{name} untagged"


@pytest.mark.parametrize("name", MODULES)
def test_every_module_requires_a_creator_tag(name: str) -> None:
    tags = module(name).variables["tags"]
    assert "default" not in tags, "tags must be passed in, never defaulted away"
    assert 'var.tags["creator"]' in tags["validation"][0]["condition"]


def test_root_builds_the_tags_with_creator_and_passes_them_everywhere() -> None:
    root = load()
    assert "creator = var.creator" in root.locals["tags"].replace('"', "")
    assert "default" not in root.variables["creator"], "creator must be given by the deployer"
    for call, args in root.modules.items():
        assert args["tags"] == "${local.tags}", f"module {call} does not get the tags"


# --- network exposure ---


def _ingress_rules(stack: Any) -> list[tuple[str, dict[str, Any]]]:
    rules = list(stack.resources.get("aws_vpc_security_group_ingress_rule", {}).items())
    for name, group in stack.resources.get("aws_security_group", {}).items():
        rules += [(f"{name}.ingress", rule) for rule in group.get("ingress", [])]
    return rules


@pytest.mark.parametrize(("where", "stack"), all_stacks())
def test_no_ingress_from_the_whole_internet(where: str, stack: Any) -> None:
    for name, rule in _ingress_rules(stack):
        cidrs = str(rule.get("cidr_ipv4", "")) + str(rule.get("cidr_blocks", ""))
        assert "0.0.0.0/0" not in cidrs and "::/0" not in cidrs, f"{where}: {name}"
        # A CIDR rule may only come from an allow-list variable that refuses the internet
        # and is empty by default.
        if "cidr_ipv4" in rule:
            variable = re.fullmatch(r"\$\{each\.value\}", rule["cidr_ipv4"]) and re.search(
                r"var\.(\w+)", rule["for_each"]
            )
            assert variable, f"{where}: {name} takes its CIDR from somewhere unchecked"
            spec = stack.variables[variable.group(1)]
            assert spec["default"] == []
            assert '"0.0.0.0/0"' in spec["validation"][0]["condition"]


def test_nothing_is_publicly_accessible_by_default() -> None:
    db = module("source_database")
    assert db.resource("aws_db_instance")["publicly_accessible"] == "${local.public}"
    assert db.locals["public"] == "${length(var.public_access_cidrs) > 0}"
    assert db.variables["public_access_cidrs"]["default"] == []
    wh = module("warehouse")
    assert wh.resource("aws_redshiftserverless_workgroup")["publicly_accessible"] == (
        "${var.publicly_accessible}"
    )
    assert wh.variables["publicly_accessible"]["default"] is False
    root = load()
    assert root.variables["source_public_access_cidrs"]["default"] == []
    assert root.variables["warehouse_publicly_accessible"]["default"] is False
    service = module("app").resource("aws_ecs_service", "this")
    assert service["network_configuration"][0]["assign_public_ip"] is False


def test_new_subnets_give_no_public_ips() -> None:
    subnets = module("network").resources["aws_subnet"]
    assert subnets["public"]["map_public_ip_on_launch"] is False
    assert "map_public_ip_on_launch" not in subnets["private"]


# --- cost defaults ---


def test_defaults_are_the_cheapest_that_work() -> None:
    assert module("source_database").variables["instance_class"]["default"] == "db.t4g.micro"
    assert module("source_database").variables["multi_az"]["default"] is False
    assert module("warehouse").variables["base_capacity_rpu"]["default"] == 8
    root = load()
    assert root.variables["source_instance_class"]["default"] == "db.t4g.micro"
    assert root.variables["warehouse_base_capacity_rpu"]["default"] == 8
    nat = module("network").resources["aws_nat_gateway"]["this"]
    assert (
        nat["count"] == "${local.create_vpc && var.enable_nat_gateway ? 1 : 0}"
    )  # one, not per zone


# --- least privilege ---


def test_execution_role_reads_only_the_two_database_secrets() -> None:
    app = module("app")
    by_sid = statements(app.data["aws_iam_policy_document"]["execution"])
    assert by_sid["ReadDatabaseSecrets"]["resources"] == [
        "${var.source_database.secret_arn}",
        "${var.warehouse.secret_arn}",
    ]
    wildcard = [sid for sid, s in by_sid.items() if "*" in s["resources"]]
    assert wildcard == ["EcrLogin"]  # GetAuthorizationToken has no resource-level permission
    assert "task_role_arn" not in app.resource("aws_ecs_task_definition")


def test_task_definitions_never_hold_a_password() -> None:
    app = module("app")
    assert "PGPASSWORD" not in str(app.locals["environment"])
    assert app.locals["password_secret"]["source"] == "${var.source_database.secret_arn}:password::"


# --- checkov skips carry their reason ---


def test_every_checkov_skip_says_why() -> None:
    skips = []
    for tf in Path(ROOT).rglob("*.tf"):
        for line in tf.read_text(encoding="utf-8").splitlines():
            if "checkov:skip" in line:
                skips.append(line)
                assert re.search(r"#checkov:skip=CKV2?_AWS_\d+:\S.{30,}", line), line
    assert skips, "no skips found: the pattern or the files moved"


def test_zero_etl_minimum_versions_are_one_list_for_doctor_and_terraform() -> None:
    """`zetl doctor` and the source module check the engine version against the same file."""
    from zetl.integration import zero_etl_minimum_minors
    from zetl_replicator.ops.doctor import MIN_MINOR

    db = module("source_database")
    text = (ROOT / "modules" / "source_database" / "main.tf").read_text()
    assert 'services/common/src/zetl/zero_etl_versions.json"))["minimum_minor"]' in text
    precondition = db.resource("aws_db_instance")["lifecycle"][0]["precondition"][0]
    assert "local.zero_etl_minimum_minor" in precondition["condition"]
    # The RDS page's figures when last read.
    assert MIN_MINOR == zero_etl_minimum_minors() == {15: 7, 16: 3, 17: 1}
    assert (ROOT.parents[1] / "services/common/src/zetl/zero_etl_versions.json").is_file()
