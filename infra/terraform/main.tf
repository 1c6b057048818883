# zetl on AWS: RDS for PostgreSQL → zero-ETL integration → Redshift Serverless, and the
# platform's images on ECS Fargate. `make plan-aws` / `make deploy-aws` drive this stack.

locals {
  tags = merge(var.tags, {
    creator     = var.creator
    project     = "zetl"
    environment = var.name
  })
  source_public = length(var.source_public_access_cidrs) > 0
}

module "network" {
  source = "./modules/network"

  name                        = var.name
  tags                        = local.tags
  vpc_cidr                    = var.vpc_cidr
  existing_vpc_id             = var.existing_vpc_id
  existing_private_subnet_ids = var.existing_private_subnet_ids
  existing_public_subnet_ids  = var.existing_public_subnet_ids
  enable_nat_gateway          = var.enable_nat_gateway
}

module "source_database" {
  source = "./modules/source_database"

  name   = var.name
  tags   = local.tags
  vpc_id = module.network.vpc_id
  # A database with a public allow-list needs a route from the internet: public subnets.
  subnet_ids                = local.source_public ? module.network.public_subnet_ids : module.network.private_subnet_ids
  client_security_group_ids = [module.network.tasks_security_group_id]
  public_access_cidrs       = var.source_public_access_cidrs
  engine_version            = var.source_engine_version
  instance_class            = var.source_instance_class
  database_name             = var.source_database_name
  final_snapshot            = var.source_final_snapshot
  deletion_protection       = var.source_deletion_protection
}

module "warehouse" {
  source = "./modules/warehouse"

  name                      = var.name
  tags                      = local.tags
  vpc_id                    = module.network.vpc_id
  subnet_ids                = module.network.private_subnet_ids
  client_security_group_ids = [module.network.tasks_security_group_id]
  database_name             = var.warehouse_database_name
  base_capacity_rpu         = var.warehouse_base_capacity_rpu
  max_capacity_rpu          = var.warehouse_max_capacity_rpu
  publicly_accessible       = var.warehouse_publicly_accessible
  allowed_cidrs             = var.warehouse_allowed_cidrs
}

module "integration" {
  source = "./modules/integration"

  name       = var.name
  tags       = local.tags
  source_arn = module.source_database.arn
  target_arn = module.warehouse.namespace_arn
  # One data filter for the integration and the local replicator (ZETL_DATA_FILTER_FILE).
  data_filter = coalesce(var.integration_data_filter, trimspace(file("${path.module}/data-filter.txt")))
}

module "app" {
  source = "./modules/app"

  name               = var.name
  tags               = local.tags
  image_tag          = var.image_tag
  subnet_ids         = module.network.private_subnet_ids
  security_group_ids = [module.network.tasks_security_group_id]
  log_retention_days = var.log_retention_days
  tasks              = var.tasks # null keeps the module's defaults

  source_database = {
    host       = module.source_database.address
    port       = module.source_database.port
    database   = module.source_database.database_name
    username   = module.source_database.master_username
    secret_arn = module.source_database.master_user_secret_arn
    kms_arn    = module.source_database.kms_key_arn
  }

  warehouse = {
    host             = module.warehouse.address
    port             = module.warehouse.port
    database         = module.warehouse.database_name
    username         = module.warehouse.admin_username
    secret_arn       = module.warehouse.admin_secret_arn
    kms_arn          = module.warehouse.kms_key_arn
    replica_database = var.replica_database
  }
}
