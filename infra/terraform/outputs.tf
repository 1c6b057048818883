# Every endpoint, and what `zetl aws` needs (it reads `terraform output -json`).

output "region" {
  description = "Region of the stack."
  value       = var.region
}

output "source_endpoint" {
  description = "Host name of the RDS for PostgreSQL source."
  value       = module.source_database.address
}

output "source_port" {
  description = "Port of the source."
  value       = module.source_database.port
}

output "source_database" {
  description = "The source database."
  value       = module.source_database.database_name
}

output "source_username" {
  description = "Master user of the source."
  value       = module.source_database.master_username
}

output "source_secret_arn" {
  description = "Secrets Manager secret with the source master password (managed by RDS)."
  value       = module.source_database.master_user_secret_arn
}

output "source_identifier" {
  description = "DB instance identifier of the source."
  value       = module.source_database.identifier
}

output "source_arn" {
  description = "ARN of the source DB instance."
  value       = module.source_database.arn
}

output "source_final_snapshot" {
  description = "Snapshot left behind by destroy (null when none is taken)."
  value       = module.source_database.final_snapshot_identifier
}

output "warehouse_endpoint" {
  description = "Host name of the Redshift Serverless workgroup."
  value       = module.warehouse.address
}

output "warehouse_port" {
  description = "Port of the workgroup."
  value       = module.warehouse.port
}

output "warehouse_database" {
  description = "The workgroup's own database (dbt's target)."
  value       = module.warehouse.database_name
}

output "warehouse_workgroup" {
  description = "Workgroup name (Redshift Data API)."
  value       = module.warehouse.workgroup_name
}

output "warehouse_namespace" {
  description = "Namespace name."
  value       = module.warehouse.namespace_name
}

output "warehouse_namespace_arn" {
  description = "Namespace ARN: the integration's target."
  value       = module.warehouse.namespace_arn
}

output "warehouse_username" {
  description = "Admin user of the warehouse."
  value       = module.warehouse.admin_username
}

output "warehouse_secret_arn" {
  description = "Secrets Manager secret with the warehouse admin password (managed by Redshift)."
  value       = module.warehouse.admin_secret_arn
}

output "replica_database" {
  description = "Database the deploy creates from the integration."
  value       = var.replica_database
}

output "replica_database_options" {
  description = "The target database's options the deploy sets (null: AWS's default)."
  value       = var.replica_database_options
}

output "integration_arn" {
  description = "ARN of the zero-ETL integration."
  value       = module.integration.arn
}

output "integration_identifier" {
  description = "Id used by CREATE DATABASE ... FROM INTEGRATION."
  value       = module.integration.integration_identifier
}

output "ecr_repositories" {
  description = "ECR repository URL per image."
  value       = module.app.repository_urls
}

output "image_tag" {
  description = "Tag the task definitions run."
  value       = var.image_tag
}

output "ecs_cluster" {
  description = "ECS cluster name."
  value       = module.app.cluster_name
}

output "task_definitions" {
  description = "Task definition ARN per task."
  value       = module.app.task_definition_arns
}

output "task_images" {
  description = "Image each task runs."
  value       = module.app.task_images
}

output "ecs_services" {
  description = "Long-running services (the generator), started at zero."
  value       = module.app.service_names
}

output "task_subnet_ids" {
  description = "Subnets the tasks run in."
  value       = module.network.private_subnet_ids
}

output "task_security_group_id" {
  description = "Security group of the tasks."
  value       = module.network.tasks_security_group_id
}

output "log_group" {
  description = "CloudWatch log group of the tasks."
  value       = module.app.log_group_name
}
