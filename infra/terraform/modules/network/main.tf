# The network: a new VPC with private subnets in three zones (Redshift Serverless needs three),
# public subnets for one NAT gateway, a security group for the ECS tasks that reach the
# databases, and flow logs; or, with existing_vpc_id, the caller's VPC and subnets.

data "aws_availability_zones" "available" {
  #checkov:skip=CKV_AWS_394:Only the first availability_zone_count zones are used (slice); AWS appends new zones at the end, so a new zone never moves existing subnets.
  state = "available"
}

# .name: the attribute both provider 5.100+ and 6.x export.
data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

locals {
  create_vpc = var.existing_vpc_id == null
  vpc_id     = local.create_vpc ? aws_vpc.this[0].id : var.existing_vpc_id
  azs        = slice(data.aws_availability_zones.available.names, 0, var.availability_zone_count)
  # /20 VPC → /24 subnets; private ones first, public ones after them.
  subnet_bits = 24 - tonumber(split("/", var.vpc_cidr)[1])
  vpc_cidr    = local.create_vpc ? aws_vpc.this[0].cidr_block : data.aws_vpc.existing[0].cidr_block
}

data "aws_vpc" "existing" {
  count = local.create_vpc ? 0 : 1
  id    = var.existing_vpc_id

  lifecycle {
    postcondition {
      condition     = length(var.existing_private_subnet_ids) >= 3
      error_message = "existing_vpc_id is set: existing_private_subnet_ids must list at least three private subnets of that VPC."
    }
  }
}

resource "aws_vpc" "this" {
  count                = local.create_vpc ? 1 : 0
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = merge(var.tags, { Name = var.name })
}

# Nothing may use the VPC's default security group: it allows nothing in or out.
resource "aws_default_security_group" "this" {
  count  = local.create_vpc ? 1 : 0
  vpc_id = aws_vpc.this[0].id

  tags = merge(var.tags, { Name = "${var.name}-default-deny" })
}

resource "aws_subnet" "private" {
  count             = local.create_vpc ? var.availability_zone_count : 0
  vpc_id            = aws_vpc.this[0].id
  availability_zone = local.azs[count.index]
  cidr_block        = cidrsubnet(var.vpc_cidr, local.subnet_bits, count.index)

  tags = merge(var.tags, { Name = "${var.name}-private-${local.azs[count.index]}", Tier = "private" })
}

resource "aws_subnet" "public" {
  count             = local.create_vpc ? var.availability_zone_count : 0
  vpc_id            = aws_vpc.this[0].id
  availability_zone = local.azs[count.index]
  cidr_block        = cidrsubnet(var.vpc_cidr, local.subnet_bits, count.index + var.availability_zone_count)
  # No automatic public IPs: only the NAT gateway (and a database given a public allow-list) lives here.
  map_public_ip_on_launch = false

  tags = merge(var.tags, { Name = "${var.name}-public-${local.azs[count.index]}", Tier = "public" })
}

resource "aws_internet_gateway" "this" {
  count  = local.create_vpc ? 1 : 0
  vpc_id = aws_vpc.this[0].id

  tags = merge(var.tags, { Name = var.name })
}

resource "aws_route_table" "public" {
  count  = local.create_vpc ? 1 : 0
  vpc_id = aws_vpc.this[0].id

  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.this[0].id
  }

  tags = merge(var.tags, { Name = "${var.name}-public" })
}

resource "aws_route_table_association" "public" {
  count          = local.create_vpc ? var.availability_zone_count : 0
  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public[0].id
}

# One NAT gateway, not one per zone: the cheapest way for tasks in private subnets to reach
# ECR and CloudWatch; a zone outage stops image pulls, which this stack can live with.
resource "aws_eip" "nat" {
  count  = local.create_vpc && var.enable_nat_gateway ? 1 : 0
  domain = "vpc"

  tags = merge(var.tags, { Name = "${var.name}-nat" })
}

resource "aws_nat_gateway" "this" {
  count         = local.create_vpc && var.enable_nat_gateway ? 1 : 0
  allocation_id = aws_eip.nat[0].id
  subnet_id     = aws_subnet.public[0].id

  tags = merge(var.tags, { Name = var.name })

  depends_on = [aws_internet_gateway.this]
}

resource "aws_route_table" "private" {
  count  = local.create_vpc ? 1 : 0
  vpc_id = aws_vpc.this[0].id

  dynamic "route" {
    for_each = var.enable_nat_gateway ? [1] : []
    content {
      cidr_block     = "0.0.0.0/0"
      nat_gateway_id = aws_nat_gateway.this[0].id
    }
  }

  tags = merge(var.tags, { Name = "${var.name}-private" })
}

resource "aws_route_table_association" "private" {
  count          = local.create_vpc ? var.availability_zone_count : 0
  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private[0].id
}

# The ECS tasks (migrate, loader, generator, transform) carry this group; the databases admit
# it. It lives here, not in the app module, so the databases and the app do not depend on
# each other.
resource "aws_security_group" "tasks" {
  #checkov:skip=CKV2_AWS_5:Attached in modules/app (ECS service and run-task network configuration) and referenced by the database security groups; checkov does not follow module outputs.
  name        = "${var.name}-tasks"
  description = "zetl ECS tasks: reach the databases in the VPC and AWS APIs over HTTPS"
  vpc_id      = local.vpc_id

  tags = merge(var.tags, { Name = "${var.name}-tasks" })
}

resource "aws_vpc_security_group_egress_rule" "tasks_https" {
  security_group_id = aws_security_group.tasks.id
  description       = "HTTPS to ECR, CloudWatch Logs, Secrets Manager and package indexes"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"

  tags = var.tags
}

resource "aws_vpc_security_group_egress_rule" "tasks_postgres" {
  security_group_id = aws_security_group.tasks.id
  description       = "PostgreSQL to the source database inside the VPC"
  ip_protocol       = "tcp"
  from_port         = 5432
  to_port           = 5432
  cidr_ipv4         = local.vpc_cidr

  tags = var.tags
}

resource "aws_vpc_security_group_egress_rule" "tasks_redshift" {
  security_group_id = aws_security_group.tasks.id
  description       = "Redshift Serverless inside the VPC"
  ip_protocol       = "tcp"
  from_port         = 5439
  to_port           = 5439
  cidr_ipv4         = local.vpc_cidr

  tags = var.tags
}

# --- flow logs (new VPC only) ---

module "flow_logs_key" {
  source      = "../kms"
  count       = local.create_vpc && var.flow_log_retention_days > 0 ? 1 : 0
  name        = "${var.name}-flow-logs"
  description = "${var.name}: VPC flow logs"
  tags        = var.tags
  service_grants = [{
    sid      = "CloudWatchLogsEncrypts"
    actions  = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    services = ["logs.${data.aws_region.current.name}.amazonaws.com"]
    condition = {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:aws:logs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:log-group:/zetl/${var.name}/*"]
    }
  }]
}

resource "aws_cloudwatch_log_group" "flow_logs" {
  count = local.create_vpc && var.flow_log_retention_days > 0 ? 1 : 0
  #checkov:skip=CKV_AWS_338:Flow logs of a disposable analytics sandbox are kept for flow_log_retention_days (default 14), not a year; raise it for a long-lived environment.
  name              = "/zetl/${var.name}/vpc-flow-logs"
  retention_in_days = var.flow_log_retention_days
  kms_key_id        = module.flow_logs_key[0].arn

  tags = var.tags
}

data "aws_iam_policy_document" "flow_logs_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["vpc-flow-logs.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "flow_logs" {
  count              = local.create_vpc && var.flow_log_retention_days > 0 ? 1 : 0
  name               = "${var.name}-vpc-flow-logs"
  assume_role_policy = data.aws_iam_policy_document.flow_logs_assume.json

  tags = var.tags
}

data "aws_iam_policy_document" "flow_logs_write" {
  count = local.create_vpc && var.flow_log_retention_days > 0 ? 1 : 0

  statement {
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = ["${aws_cloudwatch_log_group.flow_logs[0].arn}:*"]
  }
}

resource "aws_iam_role_policy" "flow_logs" {
  count  = local.create_vpc && var.flow_log_retention_days > 0 ? 1 : 0
  name   = "write-flow-logs"
  role   = aws_iam_role.flow_logs[0].id
  policy = data.aws_iam_policy_document.flow_logs_write[0].json
}

resource "aws_flow_log" "this" {
  count                = local.create_vpc && var.flow_log_retention_days > 0 ? 1 : 0
  vpc_id               = aws_vpc.this[0].id
  traffic_type         = "ALL"
  log_destination_type = "cloud-watch-logs"
  log_destination      = aws_cloudwatch_log_group.flow_logs[0].arn
  iam_role_arn         = aws_iam_role.flow_logs[0].arn

  tags = merge(var.tags, { Name = "${var.name}-flow-logs" })
}
