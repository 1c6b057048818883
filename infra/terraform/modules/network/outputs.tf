output "vpc_id" {
  description = "The VPC everything runs in."
  value       = local.vpc_id
}

output "vpc_cidr" {
  description = "The VPC's IPv4 CIDR."
  value       = local.vpc_cidr
}

output "private_subnet_ids" {
  description = "Private subnets (at least three zones): databases, workgroup and ECS tasks."
  value       = local.create_vpc ? aws_subnet.private[*].id : var.existing_private_subnet_ids
}

output "public_subnet_ids" {
  description = "Public subnets: the NAT gateway, and the source database when it has a public allow-list."
  value       = local.create_vpc ? aws_subnet.public[*].id : var.existing_public_subnet_ids
}

output "tasks_security_group_id" {
  description = "Security group of the ECS tasks; the databases admit it."
  value       = aws_security_group.tasks.id
}
