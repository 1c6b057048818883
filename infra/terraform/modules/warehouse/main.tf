# The target: a Redshift Serverless namespace (encrypted with its own key, admin password
# managed by Redshift in Secrets Manager, logs exported) and a workgroup with the settings a
# zero-ETL integration requires (case-sensitive identifiers) and TLS required.

data "aws_caller_identity" "current" {}

resource "aws_kms_key" "this" {
  description             = "${var.name}: Redshift Serverless namespace data and admin secret"
  enable_key_rotation     = true
  deletion_window_in_days = 7
  policy                  = data.aws_iam_policy_document.key.json

  tags = var.tags
}

data "aws_iam_policy_document" "key" {
  #checkov:skip=CKV_AWS_109:A key policy's Resource "*" is this key alone; the account-root statement is the AWS default that lets IAM policies govern the key.
  #checkov:skip=CKV_AWS_111:A key policy's Resource "*" is this key alone; write access is limited to this account and the named services.
  #checkov:skip=CKV_AWS_356:A key policy's Resource "*" is this key alone (key policies cannot name their own ARN before creation).
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name}-warehouse"
  target_key_id = aws_kms_key.this.key_id
}

resource "aws_redshiftserverless_namespace" "this" {
  namespace_name                   = var.name
  db_name                          = var.database_name
  admin_username                   = var.admin_username
  manage_admin_password            = true
  admin_password_secret_kms_key_id = aws_kms_key.this.arn
  kms_key_id                       = aws_kms_key.this.arn
  log_exports                      = ["userlog", "connectionlog", "useractivitylog"]

  tags = var.tags
}

resource "aws_security_group" "this" {
  name        = "${var.name}-warehouse"
  description = "zetl warehouse: Redshift from the ECS tasks and the explicit allow-list only"
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.name}-warehouse" })
}

resource "aws_vpc_security_group_ingress_rule" "from_clients" {
  # Keyed by position: the group ids are only known after apply, for_each keys must not be.
  for_each                     = { for i, id in var.client_security_group_ids : tostring(i) => id }
  security_group_id            = aws_security_group.this.id
  description                  = "Redshift from zetl tasks"
  ip_protocol                  = "tcp"
  from_port                    = 5439
  to_port                      = 5439
  referenced_security_group_id = each.value

  tags = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "from_allow_list" {
  for_each          = toset(var.allowed_cidrs)
  security_group_id = aws_security_group.this.id
  description       = "Redshift from the explicit allow-list"
  ip_protocol       = "tcp"
  from_port         = 5439
  to_port           = 5439
  cidr_ipv4         = each.value

  tags = var.tags
}

resource "aws_redshiftserverless_workgroup" "this" {
  namespace_name      = aws_redshiftserverless_namespace.this.namespace_name
  workgroup_name      = var.name
  base_capacity       = var.base_capacity_rpu
  max_capacity        = max(var.max_capacity_rpu, var.base_capacity_rpu)
  publicly_accessible = var.publicly_accessible
  subnet_ids          = var.subnet_ids
  security_group_ids  = [aws_security_group.this.id]
  # Zero-ETL integrations cannot target a warehouse with enhanced VPC routing.
  enhanced_vpc_routing = false

  # Zero-ETL replicates PostgreSQL's case-sensitive identifiers: required.
  config_parameter {
    parameter_key   = "enable_case_sensitive_identifier"
    parameter_value = "true"
  }

  config_parameter {
    parameter_key   = "require_ssl"
    parameter_value = "true"
  }

  config_parameter {
    parameter_key   = "enable_user_activity_logging"
    parameter_value = "true"
  }

  tags = var.tags
}
