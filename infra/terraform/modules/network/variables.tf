variable "name" {
  description = "Name prefix for every resource of this stack (lowercase letters, digits, hyphens)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name))
    error_message = "name must be 3-32 characters: lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "tags" {
  description = "Tags for every taggable resource; must contain a non-empty \"creator\" tag."
  type        = map(string)

  validation {
    condition     = try(length(trimspace(var.tags["creator"])) > 0, false)
    error_message = "tags must contain a non-empty \"creator\" tag (who owns these resources)."
  }
}

variable "vpc_cidr" {
  description = "CIDR of the new VPC (ignored when existing_vpc_id is set)."
  type        = string
  default     = "10.42.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && tonumber(split("/", var.vpc_cidr)[1]) <= 20
    error_message = "vpc_cidr must be an IPv4 CIDR of /20 or larger (it is cut into six /24 or larger subnets)."
  }
}

variable "availability_zone_count" {
  description = "How many availability zones the new VPC spans; Redshift Serverless needs three."
  type        = number
  default     = 3

  validation {
    condition     = var.availability_zone_count >= 3 && var.availability_zone_count <= 6
    error_message = "availability_zone_count must be between 3 and 6: a Redshift Serverless workgroup needs subnets in three zones."
  }
}

variable "existing_vpc_id" {
  description = "Use this VPC instead of creating one (then existing_private_subnet_ids is required)."
  type        = string
  default     = null

  validation {
    condition     = var.existing_vpc_id == null || can(regex("^vpc-[0-9a-f]{8,17}$", var.existing_vpc_id))
    error_message = "existing_vpc_id must look like vpc-0123456789abcdef0."
  }
}

variable "existing_private_subnet_ids" {
  description = "Private subnets of existing_vpc_id in at least three availability zones; they need a route to ECR, CloudWatch Logs and Secrets Manager (NAT or VPC endpoints)."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.existing_private_subnet_ids) == 0 || (length(var.existing_private_subnet_ids) >= 3 && alltrue([for id in var.existing_private_subnet_ids : can(regex("^subnet-[0-9a-f]{8,17}$", id))]))
    error_message = "existing_private_subnet_ids must be empty (create a VPC) or hold at least three subnet ids (subnet-...)."
  }
}

variable "existing_public_subnet_ids" {
  description = "Public subnets of existing_vpc_id; only used when the source database is given a public allow-list."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.existing_public_subnet_ids : can(regex("^subnet-[0-9a-f]{8,17}$", id))])
    error_message = "existing_public_subnet_ids must hold subnet ids (subnet-...)."
  }
}

variable "enable_nat_gateway" {
  description = "Give the new VPC's private subnets one NAT gateway, so ECS tasks can reach ECR, CloudWatch Logs and Secrets Manager."
  type        = bool
  default     = true
}

variable "flow_log_retention_days" {
  description = "Days to keep the new VPC's flow logs (0 turns flow logs off)."
  type        = number
  default     = 14

  validation {
    condition     = contains([0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.flow_log_retention_days)
    error_message = "flow_log_retention_days must be 0 (off) or a CloudWatch Logs retention value (1, 3, 5, 7, 14, 30, 60, 90, ...)."
  }
}
