variable "name" {
  description = "Name prefix; namespace and workgroup are called <name>."
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

variable "vpc_id" {
  description = "VPC of the workgroup."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets in at least three availability zones."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 3
    error_message = "subnet_ids must hold at least three subnets in three availability zones (a Redshift Serverless requirement)."
  }
}

variable "client_security_group_ids" {
  description = "Security groups admitted on the Redshift port (the ECS tasks)."
  type        = list(string)
  default     = []
}

variable "database_name" {
  description = "The workgroup's own first database: dbt builds schema analytics here."
  type        = string
  default     = "dev"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,62}$", var.database_name))
    error_message = "database_name must be a lowercase identifier (letters, digits, underscores, starting with a letter)."
  }
}

variable "admin_username" {
  description = "Admin user; Redshift generates its password and keeps it in Secrets Manager."
  type        = string
  default     = "zetl_admin"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,127}$", var.admin_username)) && var.admin_username != "admin"
    error_message = "admin_username must be a lowercase identifier and not the reserved name admin."
  }
}

variable "base_capacity_rpu" {
  description = "Base capacity in RPUs; 8 is the lowest that serves zero-ETL and dbt."
  type        = number
  default     = 8

  validation {
    condition     = var.base_capacity_rpu >= 8 && var.base_capacity_rpu <= 1024 && var.base_capacity_rpu % 8 == 0
    error_message = "base_capacity_rpu must be a multiple of 8 between 8 and 1024."
  }
}

variable "max_capacity_rpu" {
  description = "Ceiling in RPUs the workgroup may scale to (bounds the bill)."
  type        = number
  default     = 16

  validation {
    condition     = var.max_capacity_rpu >= 8 && var.max_capacity_rpu <= 1024 && var.max_capacity_rpu % 8 == 0
    error_message = "max_capacity_rpu must be a multiple of 8 between 8 and 1024."
  }
}

variable "publicly_accessible" {
  description = "Give the workgroup a public endpoint (its security group still admits only client_security_group_ids and allowed_cidrs)."
  type        = bool
  default     = false
}

variable "allowed_cidrs" {
  description = "Explicit CIDR allow-list for the Redshift port (for example a VPN); never the whole internet."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.allowed_cidrs : can(cidrhost(c, 0)) && !contains(["0.0.0.0/0", "::/0"], c)])
    error_message = "allowed_cidrs must be valid CIDRs and never 0.0.0.0/0 or ::/0."
  }
}
