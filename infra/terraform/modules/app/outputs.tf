output "cluster_name" {
  description = "ECS cluster the tasks and services run in."
  value       = aws_ecs_cluster.this.name
}

output "cluster_arn" {
  description = "ECS cluster ARN."
  value       = aws_ecs_cluster.this.arn
}

output "repository_urls" {
  description = "ECR repository URL per image."
  value       = { for k, r in aws_ecr_repository.this : k => r.repository_url }
}

output "task_definition_arns" {
  description = "Task definition ARN per task."
  value       = { for k, t in aws_ecs_task_definition.this : k => t.arn }
}

output "task_images" {
  description = "Which image each task runs."
  value       = { for k, t in var.tasks : k => t.image }
}

output "service_names" {
  description = "Long-running ECS services (started at zero)."
  value       = [for s in aws_ecs_service.this : s.name]
}

output "log_group_name" {
  description = "CloudWatch log group of every task."
  value       = aws_cloudwatch_log_group.this.name
}

output "execution_role_arn" {
  description = "The tasks' execution role."
  value       = aws_iam_role.execution.arn
}
