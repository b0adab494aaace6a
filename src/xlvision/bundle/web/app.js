// Draw a digit, read it with the exported model (onnxruntime-web), show the digit, the script
// and the digit's name in every language of the model.
//
// Preprocessing is xlvision.data.normalize.normalize_digits for one image, step for step: gray
// by luma, per-image polarity, background subtraction, crop to the ink box (lone specks
// ignored), fit the box's longer side to 20 px with an area filter, centre of mass at (14, 14).
"use strict";

const CANVAS = 28;
const BOX = 20;
const MASS_CENTRE = 14.0;
const OUTPUTS = ["digit_logits", "script_probs", "digit", "digit_prob", "script", "script_prob"];
const FAMILIARITY = "familiarity";  // an output of a bundle with prototypes only

// ---------------------------------------------------------------- preprocessing
function lowerMedian(values) {
  const sorted = Float64Array.from(values).sort();
  return sorted[(sorted.length - 1) >> 1];
}

function border(x, h, w) {
  const out = [];
  for (let c = 0; c < w; c++) out.push(x[c]);
  for (let c = 0; c < w; c++) out.push(x[(h - 1) * w + c]);
  for (let r = 1; r < h - 1; r++) out.push(x[r * w]);
  for (let r = 1; r < h - 1; r++) out.push(x[r * w + w - 1]);
  return out;
}

function roundHalfEven(v) {
  const floor = Math.floor(v);
  const diff = v - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

// Each pixel capped by its brightest 8-neighbour: a lone speck sinks, strokes stay.
function linked(x, h, w) {
  const around = new Float64Array(h * w);
  for (let r = 0; r < h; r++) {
    for (let c = 0; c < w; c++) {
      const up = r > 0 ? x[(r - 1) * w + c] : 0;
      const down = r < h - 1 ? x[(r + 1) * w + c] : 0;
      around[r * w + c] = Math.max(up, down);
    }
  }
  const column = new Float64Array(h * w);
  for (let i = 0; i < h * w; i++) column[i] = Math.max(around[i], x[i]);
  for (let r = 0; r < h; r++) {
    for (let c = 0; c < w; c++) {
      const i = r * w + c;
      let v = around[i];
      if (c > 0) v = Math.max(v, column[i - 1]);
      if (c < w - 1) v = Math.max(v, column[i + 1]);
      around[i] = Math.min(v, x[i]);
    }
  }
  return around;
}

function firstLast(mask) {
  let first = -1;
  let last = -1;
  for (let i = 0; i < mask.length; i++) {
    if (mask[i]) {
      if (first < 0) first = i;
      last = i;
    }
  }
  return [first, last];
}

// [CANVAS][size] resampling weights: output pixel u averages the source interval mapped onto it.
function areaWeights(centre, scale, size, inside) {
  const half = 0.5 * Math.max(1 / scale, 1);
  const weights = [];
  for (let u = 0; u < CANVAS; u++) {
    const t = centre + (u - MASS_CENTRE) / scale;
    const row = new Float64Array(size);
    for (let k = 0; k < size; k++) {
      const overlap = Math.min(k + 0.5, t + half) - Math.max(k - 0.5, t - half);
      row[k] = inside[k] ? Math.max(overlap, 0) / (2 * half) : 0;
    }
    weights.push(row);
  }
  return weights;
}

// gray: Float64Array h*w of luma values; returns Uint8Array 28*28, bright ink on dark.
function normalizeDigit(gray, h, w, inkThreshold) {
  const x = Float64Array.from(gray);
  let low = Infinity;
  let high = -Infinity;
  for (const v of x) { low = Math.min(low, v); high = Math.max(high, v); }
  if (lowerMedian(border(x, h, w)) > (low + high) / 2) {  // dark ink on a bright page
    for (let i = 0; i < x.length; i++) x[i] = low + high - x[i];
  }
  const sampled = [];
  for (let r = 0; r < h; r += 4) for (let c = 0; c < w; c += 4) sampled.push(x[r * w + c]);
  const background = Math.min(lowerMedian(border(x, h, w)), lowerMedian(sampled));
  let peak = 0;
  for (let i = 0; i < x.length; i++) { x[i] = Math.max(x[i] - background, 0); peak = Math.max(peak, x[i]); }

  const level = Math.max(inkThreshold * peak, 1e-12);
  const spread = linked(x, h, w);
  const inkMasks = (source) => {
    const rows = new Uint8Array(h);
    const cols = new Uint8Array(w);
    for (let r = 0; r < h; r++) {
      for (let c = 0; c < w; c++) {
        if (source[r * w + c] >= level) { rows[r] = 1; cols[c] = 1; }
      }
    }
    return [rows, cols];
  };
  let [inkRows, inkCols] = inkMasks(spread);
  if (!inkRows.some((v) => v)) [inkRows, inkCols] = inkMasks(x);  // specks only
  let [top, bottom] = firstLast(inkRows);
  let [left, right] = firstLast(inkCols);
  if (top < 0) { top = 0; bottom = h - 1; left = 0; right = w - 1; }
  const rows = new Uint8Array(h).map((_, r) => (r >= top && r <= bottom ? 1 : 0));
  const cols = new Uint8Array(w).map((_, c) => (c >= left && c <= right ? 1 : 0));

  let mass = 0;
  let rowMoment = 0;
  let colMoment = 0;
  for (let r = 0; r < h; r++) {
    if (!rows[r]) continue;
    for (let c = 0; c < w; c++) {
      if (!cols[c]) continue;
      const v = x[r * w + c];
      mass += v; rowMoment += r * v; colMoment += c * v;
    }
  }
  mass = Math.max(mass, 1e-12);
  const scale = BOX / (Math.max(bottom - top, right - left) + 1);
  const byRow = areaWeights(rowMoment / mass, scale, h, rows);
  const byCol = areaWeights(colMoment / mass, scale, w, cols);

  const partial = [];  // [CANVAS][w] = byRow @ x
  for (let u = 0; u < CANVAS; u++) {
    const acc = new Float64Array(w);
    const weights = byRow[u];
    for (let r = 0; r < h; r++) {
      const wr = weights[r];
      if (wr === 0) continue;
      for (let c = 0; c < w; c++) acc[c] += wr * x[r * w + c];
    }
    partial.push(acc);
  }
  const out = new Float64Array(CANVAS * CANVAS);
  let top28 = 0;
  for (let u = 0; u < CANVAS; u++) {
    for (let v = 0; v < CANVAS; v++) {
      let sum = 0;
      const weights = byCol[v];
      for (let c = 0; c < w; c++) sum += partial[u][c] * weights[c];
      out[u * CANVAS + v] = sum;
      top28 = Math.max(top28, sum);
    }
  }
  top28 = Math.max(top28, 1e-12);
  return Uint8Array.from(out, (v) => roundHalfEven((v / top28) * 255));
}

function canvasGray(canvas) {
  const { width, height } = canvas;
  const rgba = canvas.getContext("2d").getImageData(0, 0, width, height).data;
  const gray = new Float64Array(width * height);
  for (let i = 0; i < gray.length; i++) {
    const a = rgba[4 * i + 3] / 255;  // composited over white paper, as xlvision does
    const [r, g, b] = [0, 1, 2].map((k) => rgba[4 * i + k] * a + 255 * (1 - a));
    gray[i] = 0.299 * r + 0.587 * g + 0.114 * b;
  }
  return gray;
}

// ---------------------------------------------------------------- knowing when it does not know
// "Bengali" when the script is the language's name, else "Arabic · Arabic (Arabic-Indic digits)":
// never a script nested in parentheses inside the name's.
function languageLabel(language) {
  return language.script === language.name ? language.name : `${language.name} · ${language.script}`;
}

// reject: model.json's thresholds ({script, digit, familiar?}, null: always answer). The script,
// by its probability and by the familiarity (null: not checked), is checked first, as
// xlvision.bundle.calibration.unknown_reasons does.
function verdict(scriptProb, digitProb, reject, familiarity = null) {
  if (!reject) return "";
  if (scriptProb < reject.script) return "script";
  if (familiarity !== null && reject.familiar != null && familiarity < reject.familiar) return "script";
  if (digitProb < reject.digit) return "digit";
  return "";
}

// A probability as a percentage rounded down and capped at 99.9 %: a model is never sure.
function percent(p) {
  return `${(Math.min(Math.floor(p * 1000), 999) / 10).toFixed(1)}%`;
}

// ---------------------------------------------------------------- the page
const pad = document.getElementById("pad");
const ctx = pad.getContext("2d");
const view = document.getElementById("view");
const status = document.getElementById("status");
let session = null;
let model = null;
let inked = false;
let drawing = false;
window.xlvision = { last: null, readings: 0, normalizeDigit, verdict, percent };

function blank() {
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, pad.width, pad.height);
  view.getContext("2d").clearRect(0, 0, CANVAS, CANVAS);
  inked = false;
  document.getElementById("digit").textContent = "";
  document.getElementById("script").textContent = "";
  for (const row of document.querySelectorAll("#names tbody tr")) row.classList.remove("chosen");
  for (const cell of document.querySelectorAll("#names td.numeral, #names td.name")) cell.textContent = "";
  const body = document.body.dataset;
  delete body.digit;
  delete body.script;
  delete body.unknown;
  if (session) body.state = "ready";
  window.xlvision.last = null;
}

function position(event) {
  const box = pad.getBoundingClientRect();
  return [(event.clientX - box.left) * (pad.width / box.width), (event.clientY - box.top) * (pad.height / box.height)];
}

pad.addEventListener("pointerdown", (event) => {
  drawing = true;
  pad.setPointerCapture(event.pointerId);
  const [x, y] = position(event);
  ctx.strokeStyle = "#000";
  ctx.fillStyle = "#000";
  ctx.lineWidth = 18;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.beginPath();
  ctx.arc(x, y, ctx.lineWidth / 2, 0, 2 * Math.PI);
  ctx.fill();
  ctx.beginPath();
  ctx.moveTo(x, y);
  inked = true;
});
pad.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  const [x, y] = position(event);
  ctx.lineTo(x, y);
  ctx.stroke();
  ctx.beginPath();
  ctx.moveTo(x, y);
});
for (const type of ["pointerup", "pointercancel"]) {
  pad.addEventListener(type, () => {
    if (!drawing) return;
    drawing = false;
    read();
  });
}
document.getElementById("clear").addEventListener("click", blank);

function showInput(digits) {
  const image = view.getContext("2d").createImageData(CANVAS, CANVAS);
  digits.forEach((v, i) => { image.data.set([v, v, v, 255], 4 * i); });
  view.getContext("2d").putImageData(image, 0, 0);
}

async function read() {
  if (!session || !inked) return;
  const pre = model.preprocessing;
  const digits = normalizeDigit(canvasGray(pad), pad.height, pad.width, pre.ink_threshold ?? 0.25);
  showInput(digits);
  const input = new ort.Tensor("float32", Float32Array.from(digits, (v) => v / 255), [1, 1, CANVAS, CANVAS]);
  const names = session.outputNames.includes(FAMILIARITY) ? [...OUTPUTS, FAMILIARITY] : OUTPUTS;
  const result = await session.run({ [model.input.name]: input }, names);
  const digit = Number(result.digit.data[0]);
  const scriptIndex = Number(result.script.data[0]);
  const language = model.languages[scriptIndex];
  const digitProb = result.digit_prob.data[0];
  const scriptProb = result.script_prob.data[0];
  const familiarity = result[FAMILIARITY] ? result[FAMILIARITY].data[0] : null;
  const unknown = verdict(scriptProb, digitProb, model.reject, familiarity);
  const shown = document.getElementById("digit");
  if (unknown) {
    shown.textContent = "not sure";
  } else {
    shown.textContent = `${digit} · `;
    const numeral = document.createElement("span");
    numeral.style.fontFamily = `xlv-${language.code}, system-ui, sans-serif`;
    numeral.textContent = language.digits[digit] ?? String(digit);
    shown.append(numeral);
  }
  const why = unknown ? ` · not sure of the ${unknown}` : "";
  document.getElementById("script").textContent =
    `${languageLabel(language)} · script ${percent(scriptProb)} · digit ${percent(digitProb)}${why}`;
  document.querySelectorAll("#names tbody tr").forEach((row, i) => {
    const other = model.languages[i];
    row.classList.toggle("chosen", i === scriptIndex);
    row.querySelector(".numeral").textContent = other.digits[digit] ?? String(digit);
    row.querySelector(".name").textContent = other.class_names[digit] ?? String(digit);
  });
  window.xlvision.readings += 1;
  window.xlvision.last = {
    input: Array.from(digits), digit, script: language.code, digitProb, scriptProb, familiarity,
    scriptProbs: Array.from(result.script_probs.data), unknown,
  };
  Object.assign(document.body.dataset, {
    state: "answered", digit: unknown ? "?" : String(digit), script: language.code, unknown,
  });
}

async function start() {
  try {
    model = await (await fetch("model.json")).json();
    for (const language of model.languages) {
      for (const [family, url] of [[`xlv-${language.code}`, language.font], [`xlv-name-${language.code}`, language.name_font]]) {
        if (!url) continue;
        const face = new FontFace(family, `url(${url})`);
        document.fonts.add(face);
        face.load().catch(() => {});
      }
    }
    const body = document.querySelector("#names tbody");
    for (const language of model.languages) {
      const row = body.insertRow();
      row.dataset.code = language.code;
      row.insertCell().textContent = `${language.name} (${language.code})`;
      const numeral = row.insertCell();
      numeral.className = "numeral";
      numeral.style.fontFamily = `xlv-${language.code}, system-ui, sans-serif`;
      const name = row.insertCell();
      name.className = "name";
      name.lang = language.code;
      name.style.fontFamily = `xlv-name-${language.code}, system-ui, sans-serif`;
    }
    document.getElementById("languages").textContent =
      `${model.languages.length} scripts: ${model.languages.map((l) => l.name).join(", ")}`;
    ort.env.wasm.numThreads = 1;
    ort.env.wasm.wasmPaths = new URL("ort/", location.href).href;
    session = await ort.InferenceSession.create("model.onnx", { executionProviders: ["wasm"] });
    status.textContent = "draw a digit; it is read when you lift the pen";
    blank();
    document.body.dataset.state = "ready";
  } catch (error) {
    status.textContent = `could not load the model: ${error}`;
    document.body.dataset.state = "error";
    document.body.dataset.error = String(error);
  }
}

blank();
start();
