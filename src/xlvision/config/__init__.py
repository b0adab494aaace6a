"""Config schema, composition and validation."""

from __future__ import annotations

from xlvision.moved import moved_names

# What this package handed on before each name was imported from its own module.
__getattr__ = moved_names(
    __name__,
    {
        "xlvision.config.errors": "ConfigError",
        "xlvision.config.compose": "compose_config validate_config",
    },
)
