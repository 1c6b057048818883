# The application side: one ECR repository per image, an ECS Fargate cluster, a task
# definition per task (migrate, loader, generator, transform), the generator as a service
# (started at zero; the deploy scales it up after the load), CloudWatch logs, and one
# execution role that may read exactly the two database secrets.

data "aws_caller_identity" "current" {}

# .name: the attribute both provider 5.100+ and 6.x export.
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  log_group  = "/zetl/${var.name}/ecs"

  # Each task sees only the database it talks to. The password is never in the task
  # definition: ECS reads it from the secret RDS or Redshift manages, and libpq takes it
  # from PGPASSWORD (the URLs carry none).
  environment = {
    source = {
      SOURCE_DATABASE_URL = "postgresql://${var.source_database.username}@${var.source_database.host}:${var.source_database.port}/${var.source_database.database}?sslmode=require"
    }
    warehouse = {
      WAREHOUSE_DATABASE_URL = "postgresql://${var.warehouse.username}@${var.warehouse.host}:${var.warehouse.port}/${var.warehouse.database}?sslmode=require"
      ZETL_REPLICA_DATABASE  = var.warehouse.replica_database
      REDSHIFT_HOST          = var.warehouse.host
      REDSHIFT_PORT          = tostring(var.warehouse.port)
      REDSHIFT_DATABASE      = var.warehouse.database
      REDSHIFT_USER          = var.warehouse.username
    }
  }
  password_secret = {
    source    = "${var.source_database.secret_arn}:password::"
    warehouse = "${var.warehouse.secret_arn}:password::"
  }
  password_variables = {
    source    = ["PGPASSWORD"]
    warehouse = ["PGPASSWORD", "REDSHIFT_PASSWORD"]
  }
}

# --- encryption of images and logs ---

module "key" {
  source      = "../kms"
  name        = "${var.name}-app"
  description = "${var.name}: ECR images and ECS task logs"
  tags        = var.tags
  service_grants = [{
    sid      = "CloudWatchLogsEncrypts"
    actions  = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    services = ["logs.${local.region}.amazonaws.com"]
    condition = {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:aws:logs:${local.region}:${local.account_id}:log-group:${local.log_group}"]
    }
  }]
}

# --- images ---

resource "aws_ecr_repository" "this" {
  for_each = var.images

  name = "${var.name}/${each.key}"
  # Tags are never overwritten: the deploy pushes one tag per commit and skips tags that exist.
  image_tag_mutability = "IMMUTABLE"
  force_delete         = var.force_delete_repositories

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = module.key.arn
  }

  tags = var.tags
}

resource "aws_ecr_lifecycle_policy" "this" {
  for_each   = aws_ecr_repository.this
  repository = each.value.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "keep the 10 most recent images"
      selection    = { tagStatus = "any", countType = "imageCountMoreThan", countNumber = 10 }
      action       = { type = "expire" }
    }]
  })
}

# --- logs ---

resource "aws_cloudwatch_log_group" "this" {
  #checkov:skip=CKV_AWS_338:Task logs of a sandbox are kept log_retention_days (default 14), not a year; raise it for a long-lived environment.
  name              = local.log_group
  retention_in_days = var.log_retention_days
  kms_key_id        = module.key.arn

  tags = var.tags
}

# --- cluster, roles, tasks ---

resource "aws_ecs_cluster" "this" {
  #checkov:skip=CKV_AWS_65:Container Insights is billed per metric; it is the variable container_insights (off by default), task logs go to CloudWatch either way.
  name = var.name

  setting {
    name  = "containerInsights"
    value = var.container_insights ? "enabled" : "disabled"
  }

  tags = var.tags
}

data "aws_iam_policy_document" "ecs_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

# The execution role is the only role: the tasks call no AWS API themselves (they speak
# PostgreSQL to the two databases), so they get no task role at all.
resource "aws_iam_role" "execution" {
  name               = "${var.name}-ecs-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_assume.json

  tags = var.tags
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"] # GetAuthorizationToken has no resource-level permissions
  }

  statement {
    sid       = "PullOwnImages"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]
    resources = [for r in aws_ecr_repository.this : r.arn]
  }

  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  statement {
    sid       = "ReadDatabaseSecrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [var.source_database.secret_arn, var.warehouse.secret_arn]
  }

  statement {
    sid       = "DecryptSecretsAndImages"
    actions   = ["kms:Decrypt"]
    resources = [var.source_database.kms_arn, var.warehouse.kms_arn, module.key.arn]
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "pull-images-write-logs-read-secrets"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

resource "aws_ecs_task_definition" "this" {
  for_each = var.tasks

  family                   = "${var.name}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = tostring(each.value.cpu)
  memory                   = tostring(each.value.memory)
  execution_role_arn       = aws_iam_role.execution.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  container_definitions = jsonencode([{
    name      = each.key
    image     = "${aws_ecr_repository.this[each.value.image].repository_url}:${var.image_tag}"
    command   = each.value.command
    essential = true
    # dbt writes target/ and logs/ into its project, the Python tasks their caches: a
    # writable root filesystem, but never as root (the images run as an unprivileged user).
    readonlyRootFilesystem = false
    privileged             = false
    environment = [
      for k, v in merge(local.environment[each.value.target], { ZETL_LOG_LEVEL = "INFO" }) :
      { name = k, value = v }
    ]
    secrets = [
      for variable in local.password_variables[each.value.target] :
      { name = variable, valueFrom = local.password_secret[each.value.target] }
    ]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.this.name
        awslogs-region        = local.region
        awslogs-stream-prefix = each.key
      }
    }
  }])

  tags = var.tags
}

resource "aws_ecs_service" "this" {
  for_each = var.service_tasks

  name            = each.key
  cluster         = aws_ecs_cluster.this.id
  task_definition = aws_ecs_task_definition.this[each.key].arn
  launch_type     = "FARGATE"
  # Zero until the deploy has migrated and loaded; `zetl aws scale-service` starts it.
  desired_count           = 0
  enable_ecs_managed_tags = true
  propagate_tags          = "SERVICE"

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = var.security_group_ids
    assign_public_ip = false
  }

  tags = var.tags

  lifecycle {
    ignore_changes = [desired_count]

    precondition {
      condition     = contains(keys(var.tasks), each.key)
      error_message = "service_tasks names a task that is not in tasks."
    }
  }
}
