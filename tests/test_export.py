"""xlv-export: ONNX and TorchScript files that read as PyTorch does (1,000 images per language),
xlv-predict on an .onnx file without torch, and the web page drawn on in a real Chromium."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from browser import chromium_binary, chromium_page, serve
from conftest import run_cli, run_in_process
from test_bundle import rewrite_manifest
from test_predict import CODES, SPEC, train_shared, write_scans

from xlvision.bundle.export import (
    check_images,
    compare,
    default_runtime,
    description,
    exportable,
    reference_outputs,
    run_onnx,
    run_torchscript,
    write_onnx,
    write_torchscript,
)
from xlvision.bundle.file import load_bundle, save_bundle
from xlvision.bundle.images import read_image
from xlvision.bundle.manifest import digit_preprocessing, language_record, model_input
from xlvision.bundle.model import LID_HEAD, UnifiedModel
from xlvision.bundle.onnx_file import OUTPUTS
from xlvision.data.normalize import normalize_digits
from xlvision.models.classifier import DIGIT_HEAD
from xlvision.models.registry import build_classifier

RESNET = {"name": "resnet18", "in_channels": 1, "image_size": 28, "small_stem": True}
PER_LANGUAGE = 1000


def save(path: Path, model: UnifiedModel, specs: dict[str, dict], method: str) -> Path:
    return save_bundle(
        path,
        model,
        member_specs=specs,
        languages={c: language_record(c) for c in model.languages},
        preprocessing=digit_preprocessing(),
        integration={"method": method, "params": {}},
        metrics={},
    )


@pytest.fixture(scope="module")
def trained() -> torch.nn.Module:
    """The shared backbone of test_predict: digit heads and a `_lid` head trained on glyphs."""
    return train_shared()


def shared_layout(trained, answer: str) -> tuple[UnifiedModel, dict]:
    """One member with every head, as multihead, average, task arithmetic, TIES, joint and
    unified give; `answer='shared'` adds the shared ten-digit head."""
    member = trained
    if answer == "shared":
        member = build_classifier(SPEC, {**{c: 10 for c in CODES}, LID_HEAD: 3, DIGIT_HEAD: 10})
        member.load_state_dict(trained.state_dict(), strict=False)
        member.eval()
    model = UnifiedModel({"shared": member}, {c: "shared" for c in CODES}, CODES, "shared", answer)
    return model, {"shared": SPEC}


WIDE = {"name": "net", "channels": [12, 24], "hidden": 48, "dropout": 0.0}


def routed_layout(zh: dict = WIDE) -> tuple[UnifiedModel, dict]:
    """A member per language, each with its own backbone (of other sizes, another
    architecture, or hi's redrawing every image with one pen), and a router: the routed
    layout with several backbones."""
    torch.manual_seed(0)
    specs = {"kn": SPEC, "zh": zh, "hi": {**SPEC, "pen": "one"}, "router": SPEC}
    members = {c: build_classifier(specs[c], {c: 10}) for c in CODES}
    members["router"] = build_classifier(SPEC, {LID_HEAD: len(CODES)})
    for member in members.values():  # BatchNorm statistics that are not the identity
        member.train().backbone(torch.randn(16, 1, 28, 28))
    model = UnifiedModel(members, {c: c for c in CODES}, CODES, router="router")
    return model.eval(), specs


LAYOUTS = ["shared-routed", "shared-marginal", "shared-shared", "routed-members"]


@pytest.fixture(scope="module", params=LAYOUTS)
def layout_bundle(request, trained, tmp_path_factory) -> Path:
    """Each layout; the routed one, whose router is a member of its own, with prototypes (the
    router's unit features of 30 glyphs)."""
    if request.param == "routed-members":
        model, specs = routed_layout()
        glyphs = torch.from_numpy(check_images(CODES, 10, seed=7)) * 255
        x = model_input(glyphs[:, 0].round().to(torch.uint8), digit_preprocessing())
        with torch.no_grad():
            model.set_prototypes(F.normalize(model.members["router"].backbone(x), dim=1))
    else:
        model, specs = shared_layout(trained, request.param.split("-")[1])
    path = tmp_path_factory.mktemp("layouts") / f"{request.param}.safetensors"
    return save(path, model, specs, request.param)


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    """1,000 glyph test digits per language (3,000), in the exported input's form."""
    return check_images(CODES, PER_LANGUAGE)


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_matches_pytorch_on_1000_images_per_language(layout_bundle, images, fmt, tmp_path):
    model, manifest = load_bundle(layout_bundle)
    layout = manifest["integration"]["method"].split("-")[0]
    wrapped = exportable(model, manifest, layout_bundle)
    path = tmp_path / ("model.onnx" if fmt == "onnx" else "model.pt")
    write = write_onnx if fmt == "onnx" else write_torchscript
    write(wrapped, description(manifest, layout_bundle, fmt), path)
    run = run_onnx(path) if fmt == "onnx" else run_torchscript(path)
    exported = run(images)
    reference = reference_outputs(model, manifest, images)
    assert exported["digit_logits"].shape == (len(images), len(CODES), 10)
    # The familiarity is an output exactly when the bundle has prototypes, and it is compared.
    assert ("familiarity" in exported) == ("familiarity" in reference) == (layout == "routed")
    if layout == "routed":
        with torch.no_grad():
            digits = torch.from_numpy(np.round(images[:, 0] * 255).astype(np.uint8))
            direct = model.familiarity(model_input(digits, manifest["preprocessing"])).numpy()
        np.testing.assert_allclose(exported["familiarity"], direct, rtol=0, atol=1e-4)
    parity = compare(exported, reference)
    assert parity.images == 3 * PER_LANGUAGE
    assert parity.max_abs <= 1e-4, parity.line()
    np.testing.assert_array_equal(exported["digit"], reference["digit"])
    np.testing.assert_array_equal(exported["script"], reference["script"])
    # Dynamic batch: one image, and an odd-sized batch, read as in the whole batch.
    for start, stop in ((7, 8), (5, 12)):
        part = run(images[start:stop])
        np.testing.assert_allclose(
            part["digit_logits"], reference["digit_logits"][start:stop], rtol=0, atol=1e-4
        )
        np.testing.assert_array_equal(part["digit"], reference["digit"][start:stop])


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_a_routed_bundle_with_a_resnet_member_exports(fmt, tmp_path):
    # ResNet-18 costs ~100× a Net per image: 50 images per language keep this test short.
    model, specs = routed_layout(zh=RESNET)
    path = save(tmp_path / "resnet.safetensors", model, specs, "routed")
    model, manifest = load_bundle(path)
    out = tmp_path / ("m.onnx" if fmt == "onnx" else "m.pt")
    write = write_onnx if fmt == "onnx" else write_torchscript
    write(exportable(model, manifest, path), description(manifest, path, fmt), out)
    images = check_images(CODES, 50)
    exported = (run_onnx if fmt == "onnx" else run_torchscript)(out)(images)
    parity = compare(exported, reference_outputs(model, manifest, images))
    assert parity.ok and parity.images == 150, parity.line()


def test_onnx_metadata_names_opset_input_and_preprocessing(bundle, tmp_path):
    model, manifest = load_bundle(bundle)
    path = tmp_path / "m.onnx"
    write_onnx(exportable(model, manifest, bundle), description(manifest, bundle, "onnx"), path)
    proto = onnx.load(str(path))
    meta = {p.key: p.value for p in proto.metadata_props}
    info = json.loads(meta["xlvision"])
    assert meta["opset"] == "18" and info["opset"] == 18
    assert any(op.domain in ("", "ai.onnx") and op.version == 18 for op in proto.opset_import)
    assert info["input"]["shape"] == ["N", 1, 28, 28] and info["input"]["range"] == [0.0, 1.0]
    assert "bright ink on a dark ground" in meta["preprocessing"]
    assert "20×20" in meta["preprocessing"] and "0.1307" in meta["preprocessing"]
    assert [r["code"] for r in info["languages"]] == CODES
    assert info["languages"][0]["class_names"][7] == "ಏಳು"
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [1, 28, 28]
    # A bundle without prototypes exports the outputs it always had.
    assert [o.name for o in proto.graph.output] == list(OUTPUTS) == list(info["outputs"])


@pytest.fixture(scope="module")
def bundle(trained, tmp_path_factory) -> Path:
    model, specs = shared_layout(trained, "routed")
    return save(tmp_path_factory.mktemp("b") / "digits.safetensors", model, specs, "multihead")


@pytest.fixture(scope="module")
def onnx_file(bundle, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("onnx") / "digits.onnx"
    result = run_in_process("xlv-export", f"bundle={bundle}", f"output={out}", cwd=out.parent)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out)
    assert "checked on 600 images" in result.stderr and "identical" in result.stderr
    return out


BLOCK_TORCH = """
import sys
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "lightning", "torchvision"):
            raise ImportError(f"{name} is blocked")
        return None
sys.meta_path.insert(0, NoTorch())
from xlvision.cli.predict import main
sys.argv = ["xlv-predict", *sys.argv[1:]]
main()
"""


def test_predict_reads_an_onnx_file_without_torch(bundle, onnx_file, tmp_path):
    write_scans(tmp_path / "scans")
    outputs = {}
    for name, model in (("torch", bundle), ("onnx", onnx_file)):
        out = tmp_path / f"{name}.json"
        args = [
            f"bundle={model}",
            f"input={tmp_path / 'scans'}",
            "display=[en,zh]",
            f"output={out}",
        ]
        if name == "onnx":
            done = subprocess.run(
                [sys.executable, "-c", BLOCK_TORCH, *args], capture_output=True, text=True
            )
        else:
            done = run_in_process("xlv-predict", *args, cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-1500:]
        outputs[name] = {r["path"]: r for r in json.loads(out.read_text())}
    assert outputs["onnx"].keys() == outputs["torch"].keys() and len(outputs["onnx"]) == 6
    for path, ours in outputs["onnx"].items():
        theirs = outputs["torch"][path]
        assert (ours["digit"], ours["language"], ours["names"]) == (
            theirs["digit"],
            theirs["language"],
            theirs["names"],
        )
        assert abs(ours["confidence"] - theirs["confidence"]) <= 1e-4
    # With the script given, the ONNX file reads that language's logits.
    out = tmp_path / "kn.csv"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            BLOCK_TORCH,
            f"bundle={onnx_file}",
            f"input={tmp_path / 'scans' / 'kn*'}",
            "language=kn",
            f"output={out}",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-1500:]
    assert {line.split(",")[1] for line in out.read_text().splitlines()[1:]} == {"3", "7"}


def test_one_script_reads_the_same_from_the_onnx_file(bundle, onnx_file, tmp_path):
    from xlvision.bundle.onnx_file import OnnxReader
    from xlvision.bundle.predict import TorchReader, predict_images

    write_scans(tmp_path / "scans")
    model, manifest = load_bundle(bundle)
    read = {}
    for name, reader in (("torch", TorchReader(model, manifest)), ("onnx", OnnxReader(onnx_file))):
        predictions = predict_images(
            reader,
            reader.manifest,
            str(tmp_path / "scans" / "kn*"),
            one_script="all",
            progress=False,
        )
        read[name] = [(p.path, p.digit, p.language, p.language_prob) for p in predictions]
    assert [r[:3] for r in read["onnx"]] == [r[:3] for r in read["torch"]]
    assert {r[2] for r in read["onnx"]} == {"kn"}
    assert read["onnx"][0][3] == pytest.approx(read["torch"][0][3], abs=1e-4)


def test_export_refuses_what_it_cannot_do_in_one_line(bundle, onnx_file, tmp_path):
    cases = []
    # An output that exists is never replaced without overwrite=true.
    cases.append(([f"bundle={bundle}", f"output={onnx_file}"], 1, "a file is there already"))
    cases.append(
        ([f"bundle={bundle}", "output=/proc/xlv/m.onnx"], 1, "output=/proc/xlv: cannot write")
    )
    cases.append(
        (
            [f"bundle={bundle}", "format=web", f"output={tmp_path / 'w'}", f"runtime={tmp_path}"],
            1,
            "no onnxruntime-web there",
        )
    )
    # A bundle with a member of an unknown architecture, re-signed so only that is wrong.
    odd = tmp_path / "odd.safetensors"
    rewrite_manifest(bundle, odd, lambda m: m["members"]["shared"]["model"].update(name="vit"))
    cases.append(([f"bundle={odd}"], 1, f"{odd}: member 'shared' has unknown architecture 'vit'"))
    # A bundle with no router cannot answer without a language.
    plain = tmp_path / "plain.safetensors"
    model, _ = load_bundle(bundle)
    save(
        plain,
        UnifiedModel(dict(model.members), model.routes, model.languages),
        {"shared": SPEC},
        "x",
    )
    cases.append(
        ([f"bundle={plain}"], 1, f"{plain}: cannot be exported: it has no language-ID router")
    )
    for i, (args, code, message) in enumerate(cases):
        before = sorted(p.name for p in tmp_path.iterdir())
        # The first from a shell, the others in-process: the same main, without seconds of imports.
        done = (run_cli if i == 0 else run_in_process)("xlv-export", *args, cwd=tmp_path)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == code, done.stderr
        assert message in lines[-1] and all(not line.startswith(" ") for line in lines), lines
        assert len(lines) <= 2  # the header line of a started export, then the error
        assert sorted(p.name for p in tmp_path.iterdir()) == before


# ------------------------------------------------------------------ the page, in Chromium
THREE = [[(60, 70), (220, 70)], [(70, 140), (210, 140)], [(50, 215), (230, 215)]]  # zh 三
TWO = [[(80, 100), (200, 100)], [(50, 190), (230, 190)]]  # zh 二


@pytest.fixture(scope="module")
def page_dir(bundle, tmp_path_factory) -> Path:
    chromium_binary()
    if not (default_runtime() / "ort.wasm.min.js").is_file():
        reason = f"no onnxruntime-web at {default_runtime()} (make install puts it there)"
        if os.environ.get("XLV_REQUIRE_CHROMIUM") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    out = tmp_path_factory.mktemp("web") / "page"
    done = run_in_process(
        "xlv-export", f"bundle={bundle}", "format=web", f"output={out}", cwd=out.parent
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "app.js",
        "fonts",
        "index.html",
        "model.json",
        "model.onnx",
        "ort",
    ]
    return out


def draw(page, strokes) -> dict:
    box = page.evaluate(
        "(() => { const b = document.getElementById('pad').getBoundingClientRect();"
        " return [b.left + 1, b.top + 1]; })()"
    )
    before = page.evaluate("window.xlvision.readings")
    for stroke in strokes:
        page.stroke([(box[0] + x, box[1] + y) for x, y in stroke])
    page.wait_for(f"window.xlvision.readings === {before + len(strokes)}")
    return page.evaluate("window.xlvision.last")


@pytest.mark.chromium
def test_page_reads_a_drawn_digit_as_xlv_predict_does(bundle, onnx_file, page_dir, tmp_path):
    with serve(page_dir) as url, chromium_page(tmp_path / "profile", url + "index.html") as page:
        assert (
            page.wait_for(
                "document.body.dataset.state !== 'loading' && document.body.dataset.state"
            )
            == "ready"
        )
        shown = draw(page, THREE)
        png = page.evaluate("document.getElementById('pad').toDataURL('image/png')")
        drawn = tmp_path / "drawn.png"
        drawn.write_bytes(base64.b64decode(png.split(",", 1)[1]))
        body = page.evaluate("({...document.body.dataset})")
        rows = page.evaluate(
            "[...document.querySelectorAll('#names tbody tr')].map(r => [r.dataset.code,"
            " r.querySelector('.name').textContent, r.classList.contains('chosen')])"
        )
        text = page.evaluate("document.getElementById('script').textContent")
        # The page's preprocessing is Python's, to the grey level.
        python = normalize_digits([read_image(drawn)], "per_image")[0]
        page_input = np.array(shown["input"], dtype=np.int32).reshape(28, 28)
        assert np.abs(python.astype(np.int32) - page_input).max() <= 1
        assert page_input.max() == 255 and page_input[:4].max() == 0
        # The page shows what xlv-predict says of the same image, by both paths.
        for model in (bundle, onnx_file):
            out = tmp_path / f"{model.suffix[1:]}.json"
            done = run_in_process(
                "xlv-predict", f"bundle={model}", f"input={drawn}", f"output={out}", cwd=tmp_path
            )
            assert done.returncode == 0, done.stderr
            [record] = json.loads(out.read_text())
            assert (shown["digit"], shown["script"]) == (record["digit"], record["language"])
            assert (body["digit"], body["script"]) == (str(record["digit"]), record["language"])
            assert abs(shown["digitProb"] * shown["scriptProb"] - record["confidence"]) <= 1e-3
        assert (shown["digit"], shown["script"]) == (3, "zh")  # the drawn 三 is read as such
        names = {code: name for code, name, _ in rows}
        assert names == {c: language_record(c)["class_names"][3] for c in CODES}
        assert [code for code, _, chosen in rows if chosen] == ["zh"]
        assert "Chinese" in text
        # The bundled numeral and name fonts were served and parsed.
        faces = page.evaluate(
            "Promise.all([...document.fonts].filter(f => f.family.startsWith('xlv'))"
            ".map(f => f.loaded.then(() => f.family + ':' + f.status, () => f.family + ':error')))"
        )
        assert sorted(faces) == sorted(
            f"{prefix}{c}:loaded" for c in CODES for prefix in ("xlv-", "xlv-name-")
        )
        # Clear empties the pad and the answer; the next drawing is read afresh.
        clear = page.evaluate(
            "(() => { const b = document.getElementById('clear').getBoundingClientRect();"
            " return [b.left + b.width / 2, b.top + b.height / 2]; })()"
        )
        page.click(*clear)
        page.wait_for("document.body.dataset.state === 'ready'")
        assert page.evaluate("document.getElementById('digit').textContent") == ""
        assert page.evaluate("window.xlvision.last") is None
        again = draw(page, TWO)
        assert (again["digit"], again["script"]) == (2, "zh")
