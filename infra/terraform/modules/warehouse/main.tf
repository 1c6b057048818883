# The target: a Redshift Serverless namespace (encrypted with its own key, admin password
# managed by Redshift in Secrets Manager, logs exported) and a workgroup with the settings a
# zero-ETL integration requires (case-sensitive identifiers) and TLS required.

module "key" {
  source      = "../kms"
  name        = "${var.name}-warehouse"
  description = "${var.name}: Redshift Serverless namespace data and admin secret"
  tags        = var.tags
}

resource "aws_redshiftserverless_namespace" "this" {
  namespace_name                   = var.name
  db_name                          = var.database_name
  admin_username                   = var.admin_username
  manage_admin_password            = true
  admin_password_secret_kms_key_id = module.key.arn
  kms_key_id                       = module.key.arn
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
