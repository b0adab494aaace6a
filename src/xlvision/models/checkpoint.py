"""Classifier checkpoints: Lightning's files or our own, rebuilt through the registry."""

from __future__ import annotations

from pathlib import Path

import torch

from xlvision.models.classifier import Classifier
from xlvision.models.errors import CheckpointError
from xlvision.models.registry import build_classifier

__all__ = ["CheckpointError", "load_classifier", "save_classifier"]

PREFIX = "model."


def load_classifier(path: str | Path) -> tuple[Classifier, dict, dict[str, int]]:
    """(model, model spec, classes per language) from a checkpoint written by a stage."""
    path = Path(path).expanduser()
    if not path.is_file():
        what = "a directory, not a checkpoint file" if path.is_dir() else "no such checkpoint"
        raise CheckpointError(f"{path}: {what}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(err).__name__})") from None
    info = ckpt.get("xlvision") if isinstance(ckpt, dict) else None
    if not info or "state_dict" not in ckpt:
        raise CheckpointError(f"{path}: not an xlvision checkpoint (no architecture record)")
    spec, classes = dict(info["model"]), dict(info["classes"])
    spec.pop("weights", None)  # the checkpoint's tensors replace any pretrained weights
    model = build_classifier(spec, classes)
    state = {k[len(PREFIX) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(PREFIX)}
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise CheckpointError(f"{path}: tensors do not fit {spec['name']} ({first})") from None
    return model, spec, classes


def save_classifier(path: str | Path, model: Classifier, spec: dict) -> Path:
    """The same layout as a Lightning checkpoint of `DigitClassifierModule`, weights only."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    classes = {code: head.out_features for code, head in model.heads.items()}
    state = {PREFIX + k: v.detach().clone() for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "xlvision": {"model": spec, "classes": classes}}, path)
    return path
