"""Read an offline W&B run's `.wandb` transaction log (LevelDB log framing + protobuf)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

BLOCK = 32768
HEADER = 7  # crc32 (4), length (2), type (1); the file starts with a 7-byte magic+version


def _payloads(path: Path):
    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path}: not a W&B transaction log"
    pos, pending = HEADER, b""
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        chunk = data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        if kind == 0 and length == 0:
            continue
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            yield pending
            pending = b""


def logged_values(path: Path) -> dict[str, object]:
    """The last value of every key logged to history or summary (numbers, or the JSON of
    media such as images and tables), plus the run's tags under `_tags`."""
    from wandb.proto import wandb_internal_pb2

    values: dict[str, object] = {}
    for payload in _payloads(path):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            values["_tags"] = list(record.run.tags)
        items = record.history.item if kind == "history" else []
        items = record.summary.update if kind == "summary" else items
        for item in items:
            key = item.key or "/".join(item.nested_key)
            values[key] = json.loads(item.value_json)
    return values
