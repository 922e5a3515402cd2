// The page: plain JavaScript over web.wasm's raw exports (web/src/lib.rs).
// A drawing goes pad → ink bytes → wasm preprocess (engine::frame::mnist:
// MNIST-style, at the model's image shape, e.g. 28×28 or 8×8) → classify;
// experts' samples and the latent sliders call generate / decode. Every
// image canvas takes the model's shape, shown scaled up (pixelated).
'use strict';

const $ = (id) => document.getElementById(id);
const pad = $('pad');
const ctx = pad.getContext('2d', { willReadFrequently: true });
const SAMPLES = 3; // samples per expert
let wasm = null;   // the instance's exports
let info = null;   // the loaded model's header (web/src/lib.rs `describe`)
let chosen = -1;   // the gate's cluster for the drawing, -1 when empty
let explored = -1; // the expert whose latent space the sliders drive
let seed = 1;
let hasInk = false;

const bytes = (ptr, len) => new Uint8Array(wasm.memory.buffer, ptr, len);
const floats = (ptr, len) => new Float32Array(wasm.memory.buffer, ptr, len);
const text = () => new TextDecoder().decode(bytes(wasm.text_ptr(), wasm.text_len()));

function showError(message) {
  $('error').textContent = message;
  $('error').hidden = !message;
}

// Loads model bytes; on failure shows the engine's message and keeps the old model.
function loadModel(data, name) {
  bytes(wasm.upload(data.length), data.length).set(data);
  if (wasm.load() !== 0) {
    showError(`${name}: ${text()}`);
    return false;
  }
  info = JSON.parse(text());
  showError('');
  $('inspect').textContent = `${name}\n${info.inspect}`;
  $('shape').textContent = `${info.width}×${info.height}`;
  $('bars-legend').textContent = info.labels
    ? 'under each bar: its cluster, then the digit the label map gives it'
    : 'under each bar: its cluster (this model has no label map)';
  fit($('preview'), 112);
  fit($('decoded'), 112);
  explored = -1;
  buildExperts();
  update();
  return true;
}

// Shows a canvas of the model's image shape `box` CSS pixels on its longer
// side, keeping the aspect (scaled up pixelated: an 8×8 image stays visible).
function fit(canvas, box) {
  canvas.width = info.width;
  canvas.height = info.height;
  const k = box / Math.max(info.width, info.height);
  canvas.style.width = `${Math.round(info.width * k)}px`;
  canvas.style.height = `${Math.round(info.height * k)}px`;
}

// Paints `values` (0..1 floats or 0..255 bytes) into a canvas of the model's size.
function paint(canvas, values, scale) {
  canvas.width = info.width;
  canvas.height = info.height;
  const c = canvas.getContext('2d');
  const img = c.createImageData(info.width, info.height);
  for (let i = 0; i < values.length; i++) {
    const v = Math.round(Math.min(Math.max(values[i] * scale, 0), 255));
    img.data.set([v, v, v, 255], 4 * i);
  }
  c.putImageData(img, 0, 0);
}

function clearPad() {
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, pad.width, pad.height);
}

// The input path: the pad's pixels → MNIST-style image → gate → page.
function update() {
  if (!info) return;
  const { width: w, height: h } = pad;
  const rgba = ctx.getImageData(0, 0, w, h).data;
  const ink = bytes(wasm.drawing(w, h), w * h);
  for (let i = 0; i < w * h; i++) ink[i] = rgba[4 * i];
  hasInk = wasm.preprocess(w, h) === 1;
  const pixels = bytes(wasm.pixels_ptr(), info.width * info.height);
  paint($('preview'), pixels, 1);
  $('preview').dataset.ink = pixels.reduce((a, b) => a + b, 0);
  if (!hasInk) {
    chosen = -1;
    $('verdict').textContent = 'Draw a digit.';
    $('verdict').dataset.cluster = -1;
    showBars(null);
  } else {
    chosen = wasm.classify();
    const probs = floats(wasm.probabilities_ptr(), info.experts);
    const bits = new Uint32Array(wasm.memory.buffer, wasm.probabilities_ptr(), info.experts);
    const label = wasm.label();
    const digit = label >= 0 ? `digit ${label}` : 'no label map';
    // Fixed width (style.css) and tabular figures: the text does not move the layout.
    $('verdict').textContent =
      `cluster ${chosen} → ${digit}\nconfidence ${(100 * probs[chosen]).toFixed(1)}%`;
    $('verdict').dataset.cluster = chosen;
    $('verdict').dataset.label = label;
    showBars(Array.from(probs), Array.from(bits));
  }
  for (const [k, el] of document.querySelectorAll('.expert').entries()) {
    el.classList.toggle('chosen', k === chosen);
  }
  if (chosen >= 0 && chosen !== explored) explore(chosen);
  else if (explored < 0) explore(0);
}

function showBars(probs, bits) {
  const bars = $('bars');
  bars.replaceChildren();
  for (let k = 0; k < info.experts; k++) {
    const bar = document.createElement('div');
    bar.className = 'bar' + (k === chosen ? ' chosen' : '');
    const p = probs ? probs[k] : 0;
    bar.style.height = `${(100 * p).toFixed(2)}%`;
    if (probs) {
      bar.dataset.bits = bits[k].toString(16).padStart(8, '0');
    }
    // Bars stay in cluster order (data-bits follow the probabilities); each
    // is named by its cluster and, with a label map, the digit it stands for.
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = k;
    if (info.labels) {
      const d = document.createElement('b');
      d.textContent = info.labels[k];
      name.append(document.createElement('br'), d);
    }
    bar.title = info.labels ? `cluster ${k} → digit ${info.labels[k]}` : `cluster ${k}`;
    if (probs) bar.title += `: p = ${p}`;
    bar.append(name);
    bars.append(bar);
  }
}

function buildExperts() {
  const row = $('samples');
  row.replaceChildren();
  for (let k = 0; k < info.experts; k++) {
    const el = document.createElement('div');
    el.className = 'expert';
    el.title = `expert ${k}: click to explore its latent space`;
    el.append(info.labels ? `${k} → ${info.labels[k]}` : `${k}`);
    for (let s = 0; s < SAMPLES; s++) {
      const canvas = document.createElement('canvas');
      fit(canvas, 42);
      el.append(canvas);
    }
    el.addEventListener('click', () => explore(k));
    row.append(el);
  }
  resample();
}

function resample() {
  seed += 1000;
  for (const [k, el] of document.querySelectorAll('.expert').entries()) {
    for (const [s, canvas] of el.querySelectorAll('canvas').entries()) {
      const ptr = wasm.generate(k, seed + s);
      if (ptr) paint(canvas, floats(ptr, info.width * info.height), 255);
    }
  }
}

// Sliders over expert k's latent vector, each redrawing its decoder's output.
function explore(k) {
  explored = k;
  $('latent-expert').textContent = info.labels ? `${k} (digit ${info.labels[k]})` : k;
  const sliders = $('sliders');
  sliders.replaceChildren();
  for (let i = 0; i < info.latent; i++) {
    const name = document.createElement('label');
    name.textContent = `z${i}`;
    const input = document.createElement('input');
    Object.assign(input, { type: 'range', min: -3, max: 3, step: 0.01, value: 0, id: `z${i}` });
    name.htmlFor = input.id;
    input.addEventListener('input', decode);
    sliders.append(name, input);
  }
  decode();
}

function decode() {
  const z = floats(wasm.latent_ptr(), info.latent);
  document.querySelectorAll('#sliders input').forEach((s, i) => { z[i] = Number(s.value); });
  const ptr = wasm.decode(explored);
  if (ptr) paint($('decoded'), floats(ptr, info.width * info.height), 255);
}

function setLatent(f) {
  document.querySelectorAll('#sliders input').forEach((s) => { s.value = f(); });
  decode();
}

function gaussian() {
  const u = 1 - Math.random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * Math.random());
}

// Pointer strokes (mouse, pen or touch), classified as they are drawn.
let last = null;
let pending = false;
function strokeTo(e) {
  const r = pad.getBoundingClientRect();
  const p = [(e.clientX - r.left) * pad.width / r.width, (e.clientY - r.top) * pad.height / r.height];
  ctx.strokeStyle = '#fff';
  ctx.lineWidth = 22;
  ctx.lineCap = ctx.lineJoin = 'round';
  ctx.beginPath();
  ctx.moveTo(...(last || p));
  ctx.lineTo(...p);
  ctx.stroke();
  last = p;
  if (!pending) {
    pending = true;
    requestAnimationFrame(() => { pending = false; update(); });
  }
}
pad.addEventListener('pointerdown', (e) => { pad.setPointerCapture(e.pointerId); last = null; strokeTo(e); });
pad.addEventListener('pointermove', (e) => { if (last) strokeTo(e); });
for (const end of ['pointerup', 'pointercancel']) {
  pad.addEventListener(end, () => { if (last) { last = null; update(); } });
}

async function openFile(file) {
  if (file) loadModel(new Uint8Array(await file.arrayBuffer()), file.name);
}
$('file').addEventListener('change', (e) => openFile(e.target.files[0]));
document.addEventListener('dragover', (e) => { e.preventDefault(); document.body.classList.add('dragging'); });
document.addEventListener('dragleave', () => document.body.classList.remove('dragging'));
document.addEventListener('drop', (e) => {
  e.preventDefault();
  document.body.classList.remove('dragging');
  openFile(e.dataTransfer.files[0]);
});
$('clear').addEventListener('click', () => { clearPad(); update(); });
$('resample').addEventListener('click', resample);
$('zero').addEventListener('click', () => setLatent(() => 0));
$('random').addEventListener('click', () => setLatent(() => gaussian().toFixed(2)));

// For the browser test (web/test/browser.mjs) and the curious.
window.moe = {
  ready: false,
  // Draws a grey image of the model's shape (0..255, ink bright) on the pad,
  // scaled up by nearest neighbour (by 10 for 28×28, 35 for 8×8), as if
  // drawn, and runs the pad's input path.
  drawImage(pixels) {
    const fx = pad.width / info.width;
    const fy = pad.height / info.height;
    const img = ctx.createImageData(pad.width, pad.height);
    for (let y = 0; y < pad.height; y++) {
      for (let x = 0; x < pad.width; x++) {
        const v = pixels[Math.floor(y / fy) * info.width + Math.floor(x / fx)];
        img.data.set([v, v, v, 255], 4 * (y * pad.width + x));
      }
    }
    ctx.putImageData(img, 0, 0);
    update();
  },
  // FNV-1a over the f32 bits of generate(k, seed), every expert, seeds 0-3
  // (examples/host_timing.rs computes the same natively).
  generateHash() {
    let h = 0x811c9dc5;
    for (let k = 0; k < info.experts; k++) {
      for (let s = 0; s < 4; s++) {
        const out = new Uint32Array(wasm.memory.buffer, wasm.generate(k, s), info.width * info.height);
        for (const w of out) h = Math.imul(h ^ w, 16777619) >>> 0;
      }
    }
    return h.toString(16);
  },
  // Microseconds per call, best of 5 rounds of n calls: preprocess of the
  // pad, classify of its image, generate (experts in turn).
  bench(n) {
    const time = (f) => {
      let best = Infinity;
      for (let r = 0; r < 5; r++) {
        const t0 = performance.now();
        for (let i = 0; i < n; i++) f(i);
        best = Math.min(best, (performance.now() - t0) * 1000 / n);
      }
      return best;
    };
    return {
      preprocess_us: time(() => wasm.preprocess(pad.width, pad.height)),
      classify_us: time(() => wasm.classify()),
      generate_us: time((i) => wasm.generate(i % info.experts, i)),
    };
  },
};

(async () => {
  clearPad();
  try {
    const module = await WebAssembly.instantiateStreaming(fetch('web.wasm'), {});
    wasm = module.instance.exports;
    const response = await fetch('model.bin');
    if (!response.ok) throw new Error(`model.bin: HTTP ${response.status}`);
    loadModel(new Uint8Array(await response.arrayBuffer()), 'model.bin (served)');
  } catch (e) {
    showError(String(e));
  }
  window.moe.ready = true;
})();
