"""OmegaConf resolvers used by the shipped configs."""

from __future__ import annotations

import netrc
import os
import secrets
from datetime import datetime

from omegaconf import OmegaConf


def unique_run_id() -> str:
    """A short random id; cached per config, so a sweep shares it and two sweeps never do."""
    return secrets.token_hex(3)


def wandb_offline() -> bool:
    """Offline unless the user configured a key (env var or `wandb login`'s netrc entry)."""
    if os.environ.get("WANDB_MODE") in {"online", "run"}:
        return False
    if os.environ.get("WANDB_API_KEY"):
        return False
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is None
    except (FileNotFoundError, netrc.NetrcParseError):
        return True


def register_resolvers() -> None:
    """Idempotent: safe to call from every entry point and test."""
    if not OmegaConf.has_resolver("xlv.uid"):
        OmegaConf.register_new_resolver("xlv.uid", unique_run_id, use_cache=True)
    if not OmegaConf.has_resolver("xlv.wandb_offline"):
        OmegaConf.register_new_resolver("xlv.wandb_offline", wandb_offline)
    if not OmegaConf.has_resolver("xlv.timestamp"):
        OmegaConf.register_new_resolver(
            "xlv.timestamp", lambda: datetime.now().strftime("%Y-%m-%d_%H-%M-%S"), use_cache=True
        )
