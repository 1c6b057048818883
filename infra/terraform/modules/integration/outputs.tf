output "arn" {
  description = "ARN of the integration."
  value       = aws_rds_integration.this.arn
}

output "integration_identifier" {
  description = "Integration id for CREATE DATABASE ... FROM INTEGRATION '<id>' on the target."
  # The id is the ARN's last field (provider 6 also exports it as integration_identifier;
  # deriving it keeps the module working from provider 5.100 on).
  value = element(split(":", aws_rds_integration.this.arn), 6)
}

output "name" {
  description = "Integration name."
  value       = aws_rds_integration.this.integration_name
}

output "kms_key_arn" {
  description = "KMS key that encrypts the integration."
  value       = module.key.arn
}

output "data_filter" {
  description = "The tables the integration replicates."
  value       = aws_rds_integration.this.data_filter
}
