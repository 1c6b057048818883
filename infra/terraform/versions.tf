terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.100, < 7.0"
    }
  }

  # State is local by default; copy backend.tf.example to backend.tf for S3 remote state.
}

provider "aws" {
  region = var.region

  # Also set explicitly on every resource (tests check that); default_tags catches anything a
  # provider-generated child resource would otherwise miss.
  default_tags {
    tags = local.tags
  }
}
