"""The bundle file: every tensor in one `.safetensors`, a JSON manifest in its metadata.

Loading reads the manifest as data only: architectures are rebuilt through the model
registry, nothing is unpickled and no `_target_` is ever instantiated.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from xlvision.bundle.calibration import temperature_rise, temperatures
from xlvision.bundle.errors import BundleError
from xlvision.bundle.model import UnifiedModel
from xlvision.models.classifier import Classifier
from xlvision.models.registry import MODELS, build_classifier

FORMAT = "xlvision-bundle"
FORMAT_VERSION = 2  # 2: the whole file is checksummed (manifest and tensors)
METADATA_KEY = "xlvision"
CHECKSUM_KEY = "xlvision_sha256"
LANGUAGE_FIELDS = ("name", "script", "class_names", "class_names_en")
PREPROCESSING_FIELDS = ("mean", "std")
PROTOTYPES_KEY = "calibration.prototypes"
"""The tensor of the model's prototypes; no member may be named `calibration`."""
NEIGHBOURS_KEY = "calibration.neighbours"
CENTER_KEY = "calibration.feature_center"
PROJECTION_KEY = "calibration.feature_projection"
"""The model's neighbours, if any, and the projection of the router's features they live in."""
NEIGHBOUR_KEYS = (NEIGHBOURS_KEY, CENTER_KEY, PROJECTION_KEY)
CALIBRATION_KEYS = (PROTOTYPES_KEY, *NEIGHBOUR_KEYS)
RESERVED_KEY = PROTOTYPES_KEY.split(".", 1)[0]


def payload_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over (name, dtype, shape, raw bytes) of every tensor, in sorted name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        header = [name, str(tensor.dtype).removeprefix("torch."), list(tensor.shape)]
        digest.update(json.dumps(header).encode() + b"\0")
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def file_sha256(manifest_text: str, payload_digest: str) -> str:
    """SHA-256 of the manifest exactly as stored and the tensors' digest: the whole bundle."""
    return hashlib.sha256(manifest_text.encode() + b"\0" + payload_digest.encode()).hexdigest()


def _architecture(spec: dict) -> dict:
    """The registry arguments; pretrained `weights` are dropped, the bundle's tensors replace them."""
    return {k: v for k, v in spec.items() if k != "weights"}


def save_bundle(
    path: str | Path,
    model: UnifiedModel,
    *,
    member_specs: dict[str, dict],
    languages: dict[str, dict],
    preprocessing: dict,
    integration: dict,
    metrics: dict,
    adaptation: dict | None = None,
    calibration: dict | None = None,
) -> Path:
    """Write `model` and its manifest to one `.safetensors` file (atomically).

    `languages[code]` holds name, script, class_names (in that language) and class_names_en
    (`language_record` builds one); `preprocessing` holds at least the input's mean and std.
    `adaptation` records a test-time adaptation to unlabeled scans (`xlv-adapt`).
    `calibration` (what `fit_calibration` found: reject thresholds, NLL before and after) is
    stored with the model's temperatures; a bundle without it reads with temperature 1. The
    model's prototypes, if any, are the tensor `PROTOTYPES_KEY` (checksummed with the others)
    and their number is `calibration.prototypes`; its neighbours, if any, the tensors of
    `NEIGHBOUR_KEYS`, their number `calibration.neighbours` and the projection's width
    `calibration.projection`. Its `temperature_rise`, if any, is `calibration.temperature_rise`;
    its `views`, if not `none`, the manifest's `views`.
    """
    path = Path(path)
    if set(member_specs) != set(model.members):
        raise ValueError(f"member_specs {sorted(member_specs)} != members {sorted(model.members)}")
    if set(languages) != set(model.languages):
        raise ValueError(f"languages {sorted(languages)} != model languages {model.languages}")
    for code, record in languages.items():
        missing = [f for f in LANGUAGE_FIELDS if f not in record]
        if missing:
            raise ValueError(f"languages[{code!r}] lacks {', '.join(missing)}")
    missing = [f for f in PREPROCESSING_FIELDS if f not in preprocessing]
    if missing:
        raise ValueError(f"preprocessing lacks {', '.join(missing)}")
    tensors, members = {}, {}
    for key, member in model.members.items():
        if not key or "." in key or key == RESERVED_KEY:
            raise ValueError(
                f"member key {key!r} must be non-empty, without '.' and not {RESERVED_KEY!r}"
            )
        spec = _architecture(member_specs[key])
        if spec.get("name") not in MODELS:
            raise ValueError(f"member {key!r}: unknown architecture {spec.get('name')!r}")
        members[key] = {
            "model": spec,
            "heads": {code: head.out_features for code, head in member.heads.items()},
        }
        for name, tensor in member.state_dict().items():
            tensors[f"{key}.{name}"] = tensor.detach().cpu().contiguous().clone()
    given = calibration is not None
    calibration = dict(calibration or {})
    calibration.pop("prototypes", None)
    calibration.pop("projection", None)
    calibration.pop("neighbours", None)
    calibration.pop("evidence", None)
    calibration.pop("temperature_rise", None)
    if model.temperature_rise is not None:
        calibration["temperature_rise"] = model.temperature_rise
    if model.evidence:
        calibration["evidence"] = model.evidence
    if model.prototypes is not None:
        tensors[PROTOTYPES_KEY] = model.prototypes.detach().cpu().contiguous().clone()
        calibration["prototypes"] = len(model.prototypes)
    if model.neighbours is not None:
        held = (model.neighbours, model.feature_center, model.feature_projection)
        for key, tensor in zip(NEIGHBOUR_KEYS, held, strict=True):
            tensors[key] = tensor.detach().cpu().contiguous().clone()
        calibration["neighbours"] = len(model.neighbours)
        calibration["projection"] = model.feature_projection.shape[1]
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "members": members,
        "routes": dict(model.routes),
        "router": model.router,
        "answer": model.answer,
        "languages": [{"code": code, **languages[code]} for code in model.languages],
        "preprocessing": preprocessing,
        "integration": integration,
        "metrics": metrics,
        "payload_sha256": payload_sha256(tensors),
    }
    if model.views.name != "none":
        manifest["views"] = model.views.name
    if adaptation is not None:
        manifest["adaptation"] = adaptation
    if given or calibration or any(t != 1.0 for t in model.temperatures.values()):
        manifest["calibration"] = {
            **calibration,
            "temperature": {k: float(t) for k, t in model.temperatures.items()},
        }
    text = json.dumps(manifest, ensure_ascii=False, allow_nan=False)
    checksum = file_sha256(text, manifest["payload_sha256"])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    save_file(tensors, str(tmp), metadata={METADATA_KEY: text, CHECKSUM_KEY: checksum})
    tmp.replace(path)
    return path


def _read(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    if not path.is_file():
        raise BundleError(f"{path}: no such bundle file")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except Exception as err:
        reason = " ".join(str(err).split()) or type(err).__name__
        raise BundleError(f"{path}: not a readable safetensors file ({reason})") from None
    if METADATA_KEY not in metadata:
        raise BundleError(f"{path}: no {METADATA_KEY!r} manifest in the metadata (not a bundle)")
    # Nothing the manifest says is trusted before the whole file's checksum holds.
    if CHECKSUM_KEY not in metadata:
        raise BundleError(
            f"{path}: no whole-file checksum (written by an older xlvision: integrate again)"
        )
    payload = payload_sha256(tensors)  # hashed once: the manifest's copy is checked against it
    if file_sha256(metadata[METADATA_KEY], payload) != metadata[CHECKSUM_KEY]:
        raise BundleError(f"{path}: checksum mismatch: the file is damaged or was modified")
    try:
        manifest = json.loads(metadata[METADATA_KEY])
    except json.JSONDecodeError as err:
        raise BundleError(f"{path}: the manifest is not JSON ({err})") from None
    if not isinstance(manifest, dict):
        raise BundleError(f"{path}: the manifest is not a JSON object")
    return tensors, manifest, payload


def _check_format(path: Path, manifest: dict, payload: str) -> None:
    if manifest.get("format") != FORMAT:
        raise BundleError(f"{path}: format={manifest.get('format')!r}, expected {FORMAT!r}")
    version = manifest.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise BundleError(
            f"{path}: format_version={version!r} is not supported (this xlvision reads "
            f"{FORMAT_VERSION})"
        )
    if payload != manifest.get("payload_sha256"):
        raise BundleError(f"{path}: checksum mismatch: the tensors are damaged or were modified")


def _build_member(path: Path, key: str, record, tensors: dict[str, torch.Tensor]) -> Classifier:
    """A member rebuilt from its registry name and arguments, then filled with its tensors."""
    spec = record.get("model") if isinstance(record, dict) else None
    heads = record.get("heads") if isinstance(record, dict) else None
    if not isinstance(spec, dict) or not isinstance(heads, dict):
        raise BundleError(f"{path}: member {key!r} lacks its model spec or heads")
    name = spec.get("name")
    if not isinstance(name, str) or name not in MODELS:
        raise BundleError(
            f"{path}: member {key!r} has unknown architecture {name!r} "
            f"(known: {', '.join(sorted(MODELS))})"
        )
    if not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in heads.values()):
        raise BundleError(f"{path}: member {key!r} has a head size that is not a positive integer")
    # Every size the manifest gives is checked against the stored tensors before building.
    for code, size in heads.items():
        weight = tensors.get(f"{key}.heads.{code}.weight")
        if weight is None:  # a member of copies: each copy's head has the same size
            weight = tensors.get(f"{key}.heads.{code}.parts.0.weight")
        if weight is None or weight.ndim != 2 or weight.shape[0] != size:
            found = "missing" if weight is None else f"shape {tuple(weight.shape)}"
            raise BundleError(
                f"{path}: member {key!r} head {code!r}: the manifest says {size} classes, "
                f"its weight is {found}"
            )
    try:
        member = build_classifier(_architecture(spec), heads)
    except Exception as err:
        reason = " ".join(str(err).split())
        raise BundleError(f"{path}: member {key!r}: cannot build {name} ({reason})") from None
    prefix = f"{key}."
    state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
    try:
        member.load_state_dict(state)
    except RuntimeError as err:
        reason = " ".join(str(err).splitlines()[1:2]).strip() or str(err).splitlines()[0]
        raise BundleError(f"{path}: tensors do not fit member {key!r} ({name}): {reason}") from None
    return member


def load_bundle(path: str | Path) -> tuple[UnifiedModel, dict]:
    """(model in eval mode, manifest) after checking the format, version and checksum."""
    path = Path(path).expanduser()
    tensors, manifest, payload = _read(path)
    _check_format(path, manifest, payload)
    records = manifest.get("members")
    if not isinstance(records, dict) or not records:
        raise BundleError(f"{path}: the manifest lists no members")
    if RESERVED_KEY in records:
        raise BundleError(f"{path}: a member is named {RESERVED_KEY!r}, a reserved name")
    members = {key: _build_member(path, key, rec, tensors) for key, rec in records.items()}
    stray = sorted(
        k for k in tensors if k.split(".", 1)[0] not in members and k not in CALIBRATION_KEYS
    )
    if stray:
        raise BundleError(f"{path}: tensors of no member: {', '.join(stray[:3])}")
    try:
        codes = [record["code"] for record in manifest["languages"]]
        answer = manifest.get("answer", "routed")
        model = UnifiedModel(
            members,
            manifest["routes"],
            codes,
            manifest.get("router"),
            answer,
            temperatures(manifest),
            float((manifest.get("calibration") or {}).get("evidence") or 0.0),
            manifest.get("views", "none"),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise BundleError(f"{path}: inconsistent manifest ({err})") from None
    _set_prototypes(path, model, manifest, tensors)
    try:
        model.set_temperature_rise(temperature_rise(manifest))
    except ValueError as err:
        raise BundleError(f"{path}: calibration.{err}") from None
    return model.eval(), manifest


def _set_prototypes(
    path: Path, model: UnifiedModel, manifest: dict, tensors: dict[str, torch.Tensor]
) -> None:
    """The stored prototypes (and neighbours) on `model`, if any, once they fit its router and
    the manifest's counts (which say what an export outputs). A bundle from before prototypes
    has neither, one from before neighbours no neighbours."""
    prototypes = tensors.get(PROTOTYPES_KEY)
    neighbours = [tensors.get(key) for key in NEIGHBOUR_KEYS]
    stated = manifest.get("calibration") or {}
    held = [
        key for key, tensor in zip(NEIGHBOUR_KEYS, neighbours, strict=True) if tensor is not None
    ]
    if held and len(held) < len(NEIGHBOUR_KEYS):
        missing = [key for key in NEIGHBOUR_KEYS if key not in held]
        raise BundleError(f"{path}: tensor {held[0]!r} without {missing[0]!r}")
    found = None if not held else len(neighbours[0])
    if stated.get("neighbours") != found:
        raise BundleError(
            f"{path}: tensor {NEIGHBOURS_KEY!r} holds {'no' if found is None else found} "
            f"neighbours, the manifest's calibration says {stated.get('neighbours') or 'none'}"
        )
    if prototypes is not None:
        try:
            model.set_prototypes(prototypes, *neighbours)
        except ValueError as err:
            raise BundleError(f"{path}: tensor {PROTOTYPES_KEY!r}: {err}") from None
    elif held:
        raise BundleError(f"{path}: tensor {NEIGHBOURS_KEY!r} without {PROTOTYPES_KEY!r}")
    stated = (manifest.get("calibration") or {}).get("prototypes")
    found = None if model.prototypes is None else len(model.prototypes)
    if stated != found:
        held = "no" if found is None else found
        raise BundleError(
            f"{path}: tensor {PROTOTYPES_KEY!r} holds {held} prototypes, the manifest's "
            f"calibration says {'none' if stated is None else stated}"
        )
