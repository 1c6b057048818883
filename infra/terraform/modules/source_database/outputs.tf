output "arn" {
  description = "ARN of the DB instance: the integration's source."
  value       = aws_db_instance.this.arn
}

output "identifier" {
  description = "DB instance identifier."
  value       = aws_db_instance.this.identifier
}

output "address" {
  description = "Host name of the database endpoint."
  value       = aws_db_instance.this.address
}

output "port" {
  description = "PostgreSQL port."
  value       = aws_db_instance.this.port
}

output "database_name" {
  description = "The database the platform writes to and the integration replicates."
  value       = aws_db_instance.this.db_name
}

output "master_username" {
  description = "Master user name."
  value       = aws_db_instance.this.username
}

output "master_user_secret_arn" {
  description = "Secrets Manager secret (JSON with username and password) that RDS manages for the master user."
  value       = aws_db_instance.this.master_user_secret[0].secret_arn
}

output "kms_key_arn" {
  description = "KMS key of the storage and the master secret."
  value       = module.key.arn
}

output "security_group_id" {
  description = "Security group of the database."
  value       = aws_security_group.this.id
}

output "parameter_group_name" {
  description = "The zero-ETL parameter group."
  value       = aws_db_parameter_group.this.name
}

output "final_snapshot_identifier" {
  description = "Snapshot RDS takes when the instance is destroyed (null when final_snapshot is false)."
  value       = var.final_snapshot ? local.final_snapshot : null
}
