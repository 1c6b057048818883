variable "region" {
  description = "AWS region to deploy to (one where RDS for PostgreSQL zero-ETL integrations exist)."
  type        = string
  default     = "us-east-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as us-east-1."
  }
}

variable "name" {
  description = "Name prefix of every resource; one environment per name."
  type        = string
  default     = "zetl-dev"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,22}[a-z0-9]$", var.name))
    error_message = "name must be 3-24 characters: lowercase letters, digits and hyphens, starting with a letter (suffixes such as -source are added)."
  }
}

variable "creator" {
  description = "Who owns this environment (an e-mail or user name): the creator tag on every resource."
  type        = string

  validation {
    condition     = length(trimspace(var.creator)) > 0 && length(var.creator) <= 256
    error_message = "creator must be a non-empty tag value (at most 256 characters)."
  }
}

variable "tags" {
  description = "Extra tags for every resource (creator, project and environment are added)."
  type        = map(string)
  default     = {}

  validation {
    condition     = !contains(keys(var.tags), "creator")
    error_message = "set the creator tag with the creator variable, not inside tags."
  }
}

# --- network ---

variable "vpc_cidr" {
  description = "CIDR of the new VPC."
  type        = string
  default     = "10.42.0.0/16"
}

variable "existing_vpc_id" {
  description = "Deploy into this VPC instead of creating one."
  type        = string
  default     = null
}

variable "existing_private_subnet_ids" {
  description = "Private subnets (three zones) of existing_vpc_id."
  type        = list(string)
  default     = []
}

variable "existing_public_subnet_ids" {
  description = "Public subnets of existing_vpc_id (only for a source database with a public allow-list)."
  type        = list(string)
  default     = []
}

variable "enable_nat_gateway" {
  description = "One NAT gateway for the new VPC, so tasks can pull images (about $0.045/hour plus data)."
  type        = bool
  default     = true
}

# --- source database ---

variable "source_engine_version" {
  description = "RDS for PostgreSQL version for the source (15, 16 or 17, or major.minor)."
  type        = string
  default     = "17"
}

variable "source_instance_class" {
  description = "Instance class of the source database."
  type        = string
  default     = "db.t4g.micro"
}

variable "source_database_name" {
  description = "The source database (the integration replicates it)."
  type        = string
  default     = "storefront"
}

variable "source_public_access_cidrs" {
  description = "Explicit allow-list for reaching the source from outside the VPC; empty keeps it private."
  type        = list(string)
  default     = []
}

variable "source_final_snapshot" {
  description = "Keep a final snapshot of the source when destroying."
  type        = bool
  default     = true
}

variable "source_deletion_protection" {
  description = "Protect the source database from deletion."
  type        = bool
  default     = false
}

# --- warehouse ---

variable "warehouse_database_name" {
  description = "The workgroup's own database (dbt builds schema analytics here)."
  type        = string
  default     = "dev"
}

variable "replica_database" {
  description = "Database the deploy creates from the integration (ZETL_REPLICA_DATABASE)."
  type        = string
  default     = "raw_transactions"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,62}$", var.replica_database))
    error_message = "replica_database must be a lowercase identifier."
  }
}

variable "replica_database_options" {
  description = "The zero-ETL target database's options (Redshift's CREATE DATABASE ... FROM INTEGRATION ... SET): `make deploy-aws` creates the database with them, or sets them with ALTER DATABASE ... INTEGRATION SET when it exists. Unset (null) keeps AWS's default. The names are zetl.integration's DATABASE_OPTIONS; HISTORY_MODE is not among them, as AWS has no history mode for RDS for PostgreSQL sources."
  type = object({
    QUERY_ALL_STATES = optional(bool)
    ACCEPTINVCHARS   = optional(bool)
    REFRESH_INTERVAL = optional(number)
    TRUNCATECOLUMNS  = optional(bool)
    AUTO_REMEDIATION = optional(bool)
  })
  default = {}

  validation {
    condition = (
      var.replica_database_options.REFRESH_INTERVAL == null ? true : (
        var.replica_database_options.REFRESH_INTERVAL >= 0 &&
        var.replica_database_options.REFRESH_INTERVAL <= 432000 &&
        floor(var.replica_database_options.REFRESH_INTERVAL) == var.replica_database_options.REFRESH_INTERVAL
      )
    )
    error_message = "replica_database_options.REFRESH_INTERVAL is whole seconds from 0 to 432000 (Redshift's bound)."
  }
}

variable "warehouse_base_capacity_rpu" {
  description = "Redshift Serverless base capacity (RPUs)."
  type        = number
  default     = 8
}

variable "warehouse_max_capacity_rpu" {
  description = "Redshift Serverless maximum capacity (RPUs)."
  type        = number
  default     = 16
}

variable "warehouse_allowed_cidrs" {
  description = "Explicit allow-list for the Redshift port from outside the VPC (with a VPN or public workgroup)."
  type        = list(string)
  default     = []
}

variable "warehouse_publicly_accessible" {
  description = "Give the workgroup a public endpoint (still limited to warehouse_allowed_cidrs)."
  type        = bool
  default     = false
}

# --- integration ---

variable "integration_data_filter" {
  description = "Tables to replicate (AWS data filter syntax); defaults to data-filter.txt, the filter the local replicator reads too."
  type        = string
  default     = null
}

# --- app ---

variable "image_tag" {
  description = "Image tag the tasks run; the deploy passes the commit it built."
  type        = string
  default     = "latest"
}

variable "tasks" {
  description = "Override the task commands, images and sizes (see modules/app)."
  type = map(object({
    image   = string
    command = list(string)
    cpu     = optional(number, 256)
    memory  = optional(number, 512)
    target  = string
  }))
  default = null
}

variable "log_retention_days" {
  description = "Days to keep task logs."
  type        = number
  default     = 14
}
