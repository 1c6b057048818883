# The source: RDS for PostgreSQL configured for a zero-ETL integration (the parameter group
# carries every parameter the integration checks), encrypted with its own key, the master
# password generated and rotated by RDS in Secrets Manager, private unless an explicit
# allow-list is given.

locals {
  identifier     = "${var.name}-source"
  engine_major   = split(".", var.engine_version)[0]
  public         = length(var.public_access_cidrs) > 0
  final_snapshot = "${local.identifier}-final"
  engine_minor   = try(tonumber(split(".", var.engine_version)[1]), null)

  # The lowest minor of each major zero-ETL supports: the one list, which `zetl doctor` reads too.
  zero_etl_minimum_minor = jsondecode(file("${path.module}/../../../../services/common/src/zetl/zero_etl_versions.json"))["minimum_minor"]

  # What RDS zero-ETL requires of an RDS for PostgreSQL source (AWS: "Getting started with
  # Amazon RDS zero-ETL integrations", step 1). Static ones take effect at the first boot,
  # which is why the group is attached at creation.
  zero_etl_parameters = {
    "rds.logical_replication"   = { value = "1", apply_method = "pending-reboot" }
    "rds.replica_identity_full" = { value = "1", apply_method = "immediate" }
    "session_replication_role"  = { value = "origin", apply_method = "immediate" }
    "wal_sender_timeout"        = { value = "0", apply_method = "immediate" }
    "max_wal_senders"           = { value = tostring(var.max_wal_senders), apply_method = "pending-reboot" }
    "max_replication_slots"     = { value = tostring(var.max_replication_slots), apply_method = "pending-reboot" }
  }
  # Not for zero-ETL: clients must use TLS.
  hardening_parameters = {
    "rds.force_ssl" = { value = "1", apply_method = "pending-reboot" }
  }
}

# RDS and Secrets Manager use the key through the account's IAM (kms:ViaService grants happen
# on the caller's behalf), so it needs no service grant of its own.
module "key" {
  source      = "../kms"
  name        = "${var.name}-source"
  description = "${var.name}: source database storage, logs and master secret"
  tags        = var.tags
}

resource "aws_db_subnet_group" "this" {
  name       = local.identifier
  subnet_ids = var.subnet_ids

  tags = var.tags
}

resource "aws_security_group" "this" {
  name        = local.identifier
  description = "zetl source database: PostgreSQL from the ECS tasks and the explicit allow-list only"
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = local.identifier })
}

resource "aws_vpc_security_group_ingress_rule" "from_clients" {
  # Keyed by position: the group ids are only known after apply, for_each keys must not be.
  for_each                     = { for i, id in var.client_security_group_ids : tostring(i) => id }
  security_group_id            = aws_security_group.this.id
  description                  = "PostgreSQL from zetl tasks"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = each.value

  tags = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "from_allow_list" {
  for_each          = toset(var.public_access_cidrs)
  security_group_id = aws_security_group.this.id
  description       = "PostgreSQL from the explicit allow-list"
  ip_protocol       = "tcp"
  from_port         = 5432
  to_port           = 5432
  cidr_ipv4         = each.value

  tags = var.tags
}

resource "aws_db_parameter_group" "this" {
  name        = "${local.identifier}-zero-etl-pg${local.engine_major}"
  family      = "postgres${local.engine_major}"
  description = "zetl: RDS for PostgreSQL ${local.engine_major} as a zero-ETL integration source"

  dynamic "parameter" {
    for_each = merge(local.zero_etl_parameters, local.hardening_parameters)
    content {
      name         = parameter.key
      value        = parameter.value.value
      apply_method = parameter.value.apply_method
    }
  }

  tags = var.tags

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_db_instance" "this" {
  #checkov:skip=CKV_AWS_157:Multi-AZ doubles the cost of a sandbox source; set multi_az = true for anything that must survive a zone outage.
  #checkov:skip=CKV_AWS_353:Performance Insights is not offered on the default micro class; set performance_insights = true on a larger class.
  #checkov:skip=CKV_AWS_118:Enhanced monitoring costs extra CloudWatch ingestion; CloudWatch metrics and the exported postgresql log cover the sandbox.
  #checkov:skip=CKV_AWS_293:Deletion protection would make `make destroy-aws` fail; it is a variable (deletion_protection) and a final snapshot is kept by default.
  identifier     = local.identifier
  engine         = "postgres"
  engine_version = var.engine_version
  instance_class = var.instance_class

  lifecycle {
    precondition {
      condition = contains(keys(local.zero_etl_minimum_minor), local.engine_major) && (
        local.engine_minor == null || try(local.engine_minor >= local.zero_etl_minimum_minor[local.engine_major], false)
      )
      error_message = "engine_version ${var.engine_version}: RDS zero-ETL supports PostgreSQL ${join(", ", [for major, minor in local.zero_etl_minimum_minor : "${major}.${minor}+"])} (services/common/src/zetl/zero_etl_versions.json)."
    }
  }

  allocated_storage     = var.allocated_storage_gb
  max_allocated_storage = var.max_allocated_storage_gb == 0 ? null : var.max_allocated_storage_gb
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = module.key.arn

  db_name                       = var.database_name
  username                      = var.master_username
  manage_master_user_password   = true
  master_user_secret_kms_key_id = module.key.arn

  iam_database_authentication_enabled = true
  parameter_group_name                = aws_db_parameter_group.this.name
  db_subnet_group_name                = aws_db_subnet_group.this.name
  vpc_security_group_ids              = [aws_security_group.this.id]
  publicly_accessible                 = local.public
  multi_az                            = var.multi_az

  # Zero-ETL needs automated backups.
  backup_retention_period   = var.backup_retention_days
  copy_tags_to_snapshot     = true
  delete_automated_backups  = true
  skip_final_snapshot       = !var.final_snapshot
  final_snapshot_identifier = var.final_snapshot ? local.final_snapshot : null
  deletion_protection       = var.deletion_protection

  auto_minor_version_upgrade      = true
  apply_immediately               = true
  enabled_cloudwatch_logs_exports = ["postgresql", "upgrade"]

  performance_insights_enabled          = var.performance_insights
  performance_insights_kms_key_id       = var.performance_insights ? module.key.arn : null
  performance_insights_retention_period = var.performance_insights ? 7 : null

  tags = merge(var.tags, { Name = local.identifier })
}
