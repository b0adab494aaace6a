"""The bundle file: bit-exact round trip, refusals with one line naming the file, routing."""

from __future__ import annotations

import json
import struct

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file

from xlvision.bundle.errors import BundleError
from xlvision.bundle.file import (
    CHECKSUM_KEY,
    PROTOTYPES_KEY,
    file_sha256,
    load_bundle,
    payload_sha256,
    save_bundle,
)
from xlvision.bundle.manifest import digit_preprocessing, language_record
from xlvision.bundle.model import LID_HEAD, UnifiedModel
from xlvision.models.registry import build_classifier

SPEC = {"name": "net", "channels": [4, 8], "hidden": 16, "dropout": 0.0}
CODES = ["kn", "zh"]


def routed_model(seed: int = 0) -> UnifiedModel:
    """A member per language and a router with a `_lid` head: the routed layout."""
    torch.manual_seed(seed)
    members = {code: build_classifier(SPEC, {code: 10}) for code in CODES}
    members["router"] = build_classifier(SPEC, {LID_HEAD: len(CODES)})
    for member in members.values():  # non-trivial BatchNorm statistics travel too
        member.train().backbone(torch.randn(8, 1, 28, 28))
    return UnifiedModel(members, {c: c for c in CODES}, CODES, router="router").eval()


def write(path, model: UnifiedModel, **changes):
    parts = {
        "member_specs": {key: SPEC for key in model.members},
        "languages": {c: language_record(c) for c in model.languages},
        "preprocessing": digit_preprocessing(),
        "integration": {"method": "routed", "params": {}},
        "metrics": {"individual": {c: {"acc": 0.9} for c in model.languages}},
    }
    return save_bundle(path, model, **{**parts, **changes})


def rewrite_manifest(src, dst, edit, resign: bool = True) -> None:
    """Copy a bundle with its manifest changed by `edit`. With `resign` the whole-file checksum
    is recomputed, as someone crafting a file can: the checks behind the checksum must hold."""
    with safe_open(str(src), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        metadata = f.metadata()
    manifest = json.loads(metadata["xlvision"])
    edit(manifest)
    text = json.dumps(manifest)
    checksum = file_sha256(text, payload_sha256(tensors)) if resign else metadata[CHECKSUM_KEY]
    save_file(tensors, str(dst), metadata={"xlvision": text, CHECKSUM_KEY: checksum})


def rewrite_tensors(src, dst, edit, resign: bool = True) -> None:
    """Copy a bundle with its tensors changed by `edit`; with `resign` both checksums (the
    manifest's payload digest and the whole-file one) are recomputed to match."""
    with safe_open(str(src), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        metadata = f.metadata()
    edit(tensors)
    text = metadata["xlvision"]
    if resign:
        manifest = json.loads(text)
        manifest["payload_sha256"] = payload_sha256(tensors)
        text = json.dumps(manifest)
        metadata = {"xlvision": text, CHECKSUM_KEY: file_sha256(text, payload_sha256(tensors))}
    save_file(tensors, str(dst), metadata=metadata)


def with_prototypes(model: UnifiedModel, k: int = 5) -> UnifiedModel:
    """`model` with `k` random unit prototypes in its router's feature space."""
    width = model.members[model.router].heads[LID_HEAD].in_features
    model.set_prototypes(F.normalize(torch.randn(k, width), dim=1))
    return model


def test_round_trip_is_bit_exact(tmp_path):
    model = routed_model()
    path = write(tmp_path / "b.safetensors", model)
    loaded, manifest = load_bundle(path)
    before, after = model.state_dict(), loaded.state_dict()
    assert before.keys() == after.keys()
    for key in before:
        assert before[key].dtype == after[key].dtype
        assert torch.equal(before[key], after[key]), key
    assert not loaded.training
    assert (loaded.routes, loaded.languages, loaded.router) == (model.routes, CODES, "router")
    assert manifest["format"] == "xlvision-bundle" and manifest["format_version"] == 2
    assert manifest["members"]["kn"] == {"model": SPEC, "heads": {"kn": 10}}
    assert manifest["languages"][1]["class_names"][7] == "七"
    assert manifest["languages"][0]["class_names_en"][7] == "seven"
    assert len(manifest["payload_sha256"]) == 64
    write(tmp_path / "again.safetensors", loaded)
    assert load_bundle(tmp_path / "again.safetensors")[1] == manifest
    x = torch.randn(5, 1, 28, 28)
    assert torch.equal(model(x, "kn"), loaded(x, "kn"))


def test_loading_hashes_the_tensors_once(tmp_path, monkeypatch):
    import xlvision.bundle.file as bundle_file

    path = write(tmp_path / "b.safetensors", routed_model())
    calls = []
    real = bundle_file.payload_sha256
    monkeypatch.setattr(bundle_file, "payload_sha256", lambda t: calls.append(1) or real(t))
    load_bundle(path)
    assert len(calls) == 1


def test_one_flipped_payload_byte_is_refused(tmp_path):
    path = write(tmp_path / "b.safetensors", routed_model())
    data = bytearray(path.read_bytes())
    header = 8 + struct.unpack("<Q", data[:8])[0]
    data[header + (len(data) - header) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"b\.safetensors: checksum mismatch") as err:
        load_bundle(path)
    assert "\n" not in str(err.value)


def test_an_edited_manifest_is_refused_by_the_whole_file_checksum(tmp_path):
    src = write(tmp_path / "b.safetensors", routed_model())

    def edit(m):
        m["members"]["kn"]["heads"]["kn"] = 10**9  # would allocate before any shape check

    rewrite_manifest(src, tmp_path / "m.safetensors", edit, resign=False)
    with pytest.raises(BundleError, match=r"m\.safetensors: checksum mismatch"):
        load_bundle(tmp_path / "m.safetensors")
    # Re-signed, the size is still checked against the stored tensor before anything is built.
    rewrite_manifest(src, tmp_path / "r.safetensors", edit)
    with pytest.raises(BundleError, match=r"head 'kn': the manifest says 1000000000 classes"):
        load_bundle(tmp_path / "r.safetensors")
    save_file({"w": torch.zeros(2)}, str(tmp_path / "old.safetensors"), metadata={"xlvision": "{}"})
    with pytest.raises(BundleError, match=r"no whole-file checksum"):
        load_bundle(tmp_path / "old.safetensors")


@pytest.mark.parametrize("keep", [0.5, 0.999])
def test_truncated_file_is_refused(tmp_path, keep):
    path = write(tmp_path / "b.safetensors", routed_model())
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(BundleError, match=r"b\.safetensors: not a readable safetensors file"):
        load_bundle(path)


def test_missing_and_foreign_files_are_named(tmp_path):
    with pytest.raises(BundleError, match=r"nope\.safetensors: no such bundle file"):
        load_bundle(tmp_path / "nope.safetensors")
    (tmp_path / "text.safetensors").write_text("hello, I am not a bundle")
    with pytest.raises(BundleError, match=r"text\.safetensors: not a readable"):
        load_bundle(tmp_path / "text.safetensors")
    save_file({"w": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(BundleError, match=r"plain\.safetensors: no 'xlvision' manifest"):
        load_bundle(tmp_path / "plain.safetensors")


@pytest.mark.parametrize("version", [1, "2", None, True])
def test_wrong_format_version_is_refused(tmp_path, version):
    src = write(tmp_path / "b.safetensors", routed_model())
    rewrite_manifest(src, tmp_path / "v.safetensors", lambda m: m.update(format_version=version))
    with pytest.raises(BundleError, match=r"v\.safetensors: format_version=.* is not supported"):
        load_bundle(tmp_path / "v.safetensors")


def test_unknown_architecture_is_refused(tmp_path):
    src = write(tmp_path / "b.safetensors", routed_model())

    def edit(m):
        m["members"]["zh"]["model"]["name"] = "vit_huge"

    rewrite_manifest(src, tmp_path / "a.safetensors", edit)
    with pytest.raises(BundleError, match=r"a\.safetensors: member 'zh' has unknown architecture"):
        load_bundle(tmp_path / "a.safetensors")


def test_an_unknown_pen_is_refused_in_one_line(tmp_path):
    src = write(tmp_path / "b.safetensors", routed_model())

    def edit(m):
        m["members"]["zh"]["model"]["pen"] = "thick"

    rewrite_manifest(src, tmp_path / "p.safetensors", edit)
    with pytest.raises(
        BundleError, match=r"p\.safetensors: member 'zh'.*model\.pen='thick'"
    ) as err:
        load_bundle(tmp_path / "p.safetensors")
    assert "\n" not in str(err.value)


def test_tensors_that_do_not_fit_are_refused(tmp_path):
    src = write(tmp_path / "b.safetensors", routed_model())

    def edit(m):
        m["members"]["kn"]["model"]["hidden"] = 32

    rewrite_manifest(src, tmp_path / "f.safetensors", edit)
    with pytest.raises(BundleError, match=r"f\.safetensors: tensors do not fit member 'kn'"):
        load_bundle(tmp_path / "f.safetensors")


def test_a_target_in_the_manifest_is_data_and_executes_nothing(tmp_path):
    src = write(tmp_path / "b.safetensors", routed_model())
    marker = tmp_path / "pwned"
    target = {"_target_": "os.system", "_args_": [f"touch {marker}"], "command": f"touch {marker}"}

    def edit(m):
        m["members"]["kn"]["model"]["_target_"] = "os.system"
        m["members"]["kn"]["model"]["_args_"] = [f"touch {marker}"]
        m["preprocessing"]["hook"] = target
        m["integration"] = target
        m["metrics"]["hook"] = target

    rewrite_manifest(src, tmp_path / "t.safetensors", edit)
    model, manifest = load_bundle(tmp_path / "t.safetensors")
    assert not marker.exists()
    assert manifest["integration"] == target  # read back as plain data
    assert isinstance(model.members["kn"], torch.nn.Module)


def test_router_sends_each_image_to_its_language_member(tmp_path):
    model, _ = load_bundle(write(tmp_path / "b.safetensors", routed_model()))
    x = torch.randn(6, 1, 28, 28)
    lid = model.members["router"].heads[LID_HEAD]
    with torch.no_grad():
        lid.weight.zero_()
        for index, code in enumerate(CODES):
            lid.bias.copy_(torch.tensor([8.0, 0.0]) if index == 0 else torch.tensor([0.0, 8.0]))
            out = model.predict(x)
            assert out["language"].tolist() == [index] * 6
            assert torch.all(out["language_prob"] > 0.99)
            expected = model.members[code](x, code).softmax(dim=1)
            assert torch.equal(out["digit"], expected.argmax(dim=1))
            assert torch.allclose(out["digit_prob"], expected.amax(dim=1))
        given = model.predict(x, language="kn")
    assert given["language"].tolist() == [0] * 6 and torch.all(given["language_prob"] == 1)
    assert torch.equal(given["digit"], model(x, "kn").argmax(dim=1))


def test_predict_routes_a_mixed_batch_per_sample():
    """A shared member whose `_lid` head reads the sign of one feature splits the batch."""
    torch.manual_seed(1)
    shared = build_classifier(SPEC, {"kn": 10, "zh": 10, LID_HEAD: 2}).eval()
    model = UnifiedModel({"shared": shared}, {"kn": "shared", "zh": "shared"}, CODES, "shared")
    x = torch.randn(16, 1, 28, 28)
    with torch.no_grad():
        features = shared.backbone(x)
        unit = features.std(dim=0).argmax()
        threshold = features[:, unit].median()
        lid = shared.heads[LID_HEAD]
        lid.weight.zero_()
        lid.weight[1, unit], lid.weight[0, unit] = 50.0, -50.0
        lid.bias.copy_(torch.tensor([50.0, -50.0]) * threshold)
        out = model.predict(x)
        expected_language = (features[:, unit] > threshold).long()
        assert torch.equal(out["language"], expected_language)
        for index, code in enumerate(CODES):
            rows = expected_language == index
            assert torch.equal(out["digit"][rows], model(x[rows], code).argmax(dim=1))


def test_model_without_router_needs_the_language(tmp_path):
    model = routed_model()
    plain = UnifiedModel(dict(model.members), model.routes, CODES)
    with pytest.raises(ValueError, match="no language-identification router"):
        plain.predict(torch.randn(2, 1, 28, 28))
    loaded, manifest = load_bundle(write(tmp_path / "p.safetensors", plain))
    assert manifest["router"] is None and loaded.router is None
    with pytest.raises(ValueError, match="has no route"):
        UnifiedModel(dict(model.members), {"kn": "kn"}, CODES)


def test_save_refuses_incomplete_language_records(tmp_path):
    with pytest.raises(ValueError, match=r"languages\['zh'\] lacks class_names, class_names_en"):
        write(
            tmp_path / "x.safetensors",
            routed_model(),
            languages={"kn": language_record("kn"), "zh": {"name": "Chinese", "script": "Han"}},
        )


def test_prototypes_round_trip_under_the_checksum(tmp_path):
    model = with_prototypes(routed_model())
    path = write(tmp_path / "b.safetensors", model)
    loaded, manifest = load_bundle(path)
    assert torch.equal(loaded.prototypes, model.prototypes)
    assert manifest["calibration"]["prototypes"] == 5
    with safe_open(str(path), framework="pt") as f:
        assert PROTOTYPES_KEY in f.keys()
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(loaded.predict(x)["familiarity"], model.familiarity(x))
    again = write(tmp_path / "again.safetensors", loaded)
    assert load_bundle(again)[1]["payload_sha256"] == manifest["payload_sha256"]
    # A bundle saved without prototypes has no such tensor and reads as before.
    plain, manifest = load_bundle(write(tmp_path / "plain.safetensors", routed_model()))
    assert plain.prototypes is None and "calibration" not in manifest
    assert "familiarity" not in plain.predict(x)


def test_tampered_or_misshapen_prototypes_are_refused_in_one_line(tmp_path):
    src = write(tmp_path / "b.safetensors", with_prototypes(routed_model()))

    def nudge(tensors):
        tensors[PROTOTYPES_KEY] = tensors[PROTOTYPES_KEY] * 0.5

    rewrite_tensors(src, tmp_path / "t.safetensors", nudge, resign=False)
    with pytest.raises(BundleError, match=r"t\.safetensors: checksum mismatch") as err:
        load_bundle(tmp_path / "t.safetensors")
    assert "\n" not in str(err.value)
    for name, shape in (("wide", (5, 17)), ("flat", (80,)), ("empty", (0, 16))):

        def misshape(tensors, shape=shape):
            tensors[PROTOTYPES_KEY] = torch.ones(shape)

        rewrite_tensors(src, tmp_path / f"{name}.safetensors", misshape)
        with pytest.raises(BundleError) as err:
            load_bundle(tmp_path / f"{name}.safetensors")
        message = str(err.value)
        assert message.startswith(f"{tmp_path / name}.safetensors: tensor 'calibration.prototypes'")
        assert f"of shape {list(shape)}: expected [K ≥ 1, 16]" in message and "\n" not in message

    def fewer(tensors):
        tensors[PROTOTYPES_KEY] = tensors[PROTOTYPES_KEY][:3].clone()

    rewrite_tensors(src, tmp_path / "k.safetensors", fewer)
    with pytest.raises(BundleError, match=r"k\.safetensors: tensor .* holds 3 prototypes, the "):
        load_bundle(tmp_path / "k.safetensors")


def test_a_member_named_calibration_is_refused(tmp_path):
    model = routed_model()
    members = {("calibration" if k == "router" else k): m for k, m in model.members.items()}
    renamed = UnifiedModel(members, model.routes, CODES, router="calibration")
    with pytest.raises(ValueError, match="not 'calibration'"):
        write(tmp_path / "c.safetensors", renamed)
    with pytest.raises(ValueError, match="need a router"):
        UnifiedModel(dict(model.members), model.routes, CODES).set_prototypes(torch.ones(2, 16))
