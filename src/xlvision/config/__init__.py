"""Config schema, composition and validation."""

from xlvision.config.compose import ConfigError, compose_config, validate_config

__all__ = ["ConfigError", "compose_config", "validate_config"]
