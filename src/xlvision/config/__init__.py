"""Config schema, composition and validation.

The names below load on first use, so `xlvision.config.checks` (imported by the config
dataclasses of other packages) can be imported without the schema that imports them back.
"""

from __future__ import annotations

from xlvision.lazy import lazy_namespace

__getattr__, __all__ = lazy_namespace(
    __name__,
    {
        "compose": "ConfigError compose_config validate_config",
    },
)
