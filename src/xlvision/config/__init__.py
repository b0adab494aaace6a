"""Config schema, composition and validation.

The names below load on first use, so `xlvision.config.checks` (imported by the config
dataclasses of other packages) can be imported without the schema that imports them back.
"""

from __future__ import annotations

from xlvision.lazy import lazy_getattr

_WHERE = {
    name: "xlvision.config.compose" for name in ("ConfigError", "compose_config", "validate_config")
}

__all__ = sorted(_WHERE)


__getattr__ = lazy_getattr(__name__, _WHERE)
