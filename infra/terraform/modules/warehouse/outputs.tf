output "namespace_arn" {
  description = "ARN of the namespace: the integration's target."
  value       = aws_redshiftserverless_namespace.this.arn
}

output "namespace_name" {
  description = "Namespace name."
  value       = aws_redshiftserverless_namespace.this.namespace_name
}

output "workgroup_name" {
  description = "Workgroup name (the Redshift Data API's WorkgroupName)."
  value       = aws_redshiftserverless_workgroup.this.workgroup_name
}

output "workgroup_arn" {
  description = "Workgroup ARN."
  value       = aws_redshiftserverless_workgroup.this.arn
}

output "address" {
  description = "Host name of the workgroup endpoint."
  value       = aws_redshiftserverless_workgroup.this.endpoint[0].address
}

output "port" {
  description = "Redshift port."
  value       = aws_redshiftserverless_workgroup.this.endpoint[0].port
}

output "database_name" {
  description = "The workgroup's own database (dbt's target; the replica database sits beside it)."
  value       = aws_redshiftserverless_namespace.this.db_name
}

output "admin_username" {
  description = "Admin user name."
  # From the variable: the provider marks the namespace's attribute sensitive.
  value = var.admin_username
}

output "admin_secret_arn" {
  description = "Secrets Manager secret Redshift manages for the admin user."
  value       = aws_redshiftserverless_namespace.this.admin_password_secret_arn
}

output "kms_key_arn" {
  description = "KMS key of the namespace and its admin secret."
  value       = module.key.arn
}

output "security_group_id" {
  description = "Security group of the workgroup."
  value       = aws_security_group.this.id
}
