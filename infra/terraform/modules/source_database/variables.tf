variable "name" {
  description = "Name prefix; the DB instance is called <name>-source."
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
  description = "VPC of the database."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets of the DB subnet group (private ones, or public ones when public_access_cidrs is not empty)."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "subnet_ids must hold at least two subnets in different availability zones (an RDS requirement)."
  }
}

variable "client_security_group_ids" {
  description = "Security groups admitted on the PostgreSQL port (the ECS tasks)."
  type        = list(string)
  default     = []
}

variable "public_access_cidrs" {
  description = "Explicit allow-list of CIDRs that may connect from outside the VPC. Empty (the default) keeps the database private; a non-empty list makes it publicly accessible to these CIDRs only."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.public_access_cidrs : can(cidrhost(c, 0)) && !contains(["0.0.0.0/0", "::/0"], c)])
    error_message = "public_access_cidrs must be valid CIDRs and never the whole internet (0.0.0.0/0 or ::/0): list the addresses that need access."
  }
}

variable "engine_version" {
  description = "RDS for PostgreSQL version: a major (\"17\": RDS picks its default minor) or major.minor. Zero-ETL's minimum minor per major is in services/common/src/zetl/zero_etl_versions.json (checked before the instance is created); `zetl aws preflight` asks RDS whether the version it would run supports integrations in the region."
  type        = string
  default     = "17"

  validation {
    # A bare major is always fine: RDS then picks its current default minor.
    condition     = can(regex("^(15|16|17)(\\.[0-9]+)?$", var.engine_version))
    error_message = "engine_version must be a PostgreSQL major that RDS zero-ETL supports (15, 16 or 17), optionally with its minor (17.1, say)."
  }
}

variable "instance_class" {
  description = "DB instance class; the default is the smallest Graviton burstable class."
  type        = string
  default     = "db.t4g.micro"

  validation {
    condition     = can(regex("^db\\.[a-z0-9]+\\.[a-z0-9]+$", var.instance_class))
    error_message = "instance_class must look like db.t4g.micro."
  }
}

variable "allocated_storage_gb" {
  description = "Initial gp3 storage in GiB (RDS minimum for gp3 is 20)."
  type        = number
  default     = 20

  validation {
    condition     = var.allocated_storage_gb >= 20 && var.allocated_storage_gb <= 65536
    error_message = "allocated_storage_gb must be between 20 and 65536."
  }
}

variable "max_allocated_storage_gb" {
  description = "Storage autoscaling ceiling in GiB (0 turns autoscaling off)."
  type        = number
  default     = 100

  validation {
    condition     = var.max_allocated_storage_gb == 0 || var.max_allocated_storage_gb >= 20
    error_message = "max_allocated_storage_gb must be 0 (no autoscaling) or at least 20."
  }
}

variable "database_name" {
  description = "The database the loader and generator write to, and the integration replicates."
  type        = string
  default     = "storefront"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,62}$", var.database_name))
    error_message = "database_name must be a lowercase PostgreSQL identifier (letters, digits, underscores, starting with a letter)."
  }
}

variable "master_username" {
  description = "Master user; its password is generated and kept in Secrets Manager by RDS."
  type        = string
  default     = "zetl"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,15}$", var.master_username)) && !contains(["postgres", "rdsadmin", "admin"], var.master_username)
    error_message = "master_username must be 1-16 lowercase letters, digits or underscores, start with a letter, and not be a reserved name."
  }
}

variable "backup_retention_days" {
  description = "Automated backup retention; zero-ETL requires automated backups, so at least 1."
  type        = number
  default     = 1

  validation {
    condition     = var.backup_retention_days >= 1 && var.backup_retention_days <= 35
    error_message = "backup_retention_days must be between 1 and 35: zero-ETL integrations need automated backups."
  }
}

variable "max_replication_slots" {
  description = "max_replication_slots; zero-ETL needs at least 20 (one slot per integration)."
  type        = number
  default     = 20

  validation {
    condition     = var.max_replication_slots >= 20
    error_message = "max_replication_slots must be at least 20 for RDS zero-ETL integrations."
  }
}

variable "max_wal_senders" {
  description = "max_wal_senders; zero-ETL needs at least 20."
  type        = number
  default     = 20

  validation {
    condition     = var.max_wal_senders >= 20
    error_message = "max_wal_senders must be at least 20 for RDS zero-ETL integrations."
  }
}

variable "deletion_protection" {
  description = "Refuse to delete the instance (turn on for anything that is not a sandbox)."
  type        = bool
  default     = false
}

variable "final_snapshot" {
  description = "Take a final snapshot when the instance is destroyed (it outlives `make destroy-aws` and costs storage)."
  type        = bool
  default     = true
}

variable "performance_insights" {
  description = "Turn on Performance Insights (not available on the micro classes)."
  type        = bool
  default     = false
}

variable "multi_az" {
  description = "Run a standby in a second zone (doubles the instance cost)."
  type        = bool
  default     = false
}
