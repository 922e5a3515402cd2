// The page: plain JavaScript over web.wasm's raw exports (web/src/lib.rs).
// A drawing goes pad → ink bytes → wasm preprocess (engine::frame::mnist:
// MNIST-style, at the model's image shape, e.g. 28×28 or 8×8) → classify;
// experts' samples and the latent sliders call generate / decode; a
// two-level model's answer names the style too, and the chosen expert's
// styles get a row of samples each (generate_style). Every
// image canvas takes the model's shape, shown scaled up (pixelated).
// "Connect a board" (Web Serial) sends each classified drawing to a board
// too, encoded and decoded by the wasm (web/src/board.rs: the protocol's
// own crate), and shows the board's answer beside the page's.
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
let verdict = null; // the page's last answer: { drawn, cluster, label, bits, style }
// (its novelty is shown by showNovelty, in #novelty's text and data)
let drawn = 0;      // drawings classified so far (the board's answers name theirs)

const bytes = (ptr, len) => new Uint8Array(wasm.memory.buffer, ptr, len);
const floats = (ptr, len) => new Float32Array(wasm.memory.buffer, ptr, len);
const text = () => new TextDecoder().decode(bytes(wasm.text_ptr(), wasm.text_len()));

// The banner at the top of the window (fixed: it moves nothing); empty hides it.
function showError(message) {
  $('error-text').textContent = message;
  $('error').hidden = !message;
}
$('error-close').addEventListener('click', () => showError(''));

// A cluster's name: `3 → 0` (cluster 3, which the label map calls digit 0),
// or just the cluster when the model has no label map.
const clusterName = (k) => (info.labels ? `${k} → ${info.labels[k]}` : `${k}`);

// Whether the loaded model is two-level (some cluster has more than one style).
const twoLevel = () => info.styles.some((n) => n > 1);

// Loads model bytes: returns null, or the engine's message (the old model kept).
function loadModel(data, name) {
  bytes(wasm.upload(data.length), data.length).set(data);
  if (wasm.load() !== 0) return text();
  info = JSON.parse(text());
  showError('');
  $('inspect').textContent = `${name}\n${info.inspect}`;
  $('shape').textContent = `${info.width}×${info.height}`;
  $('bars-legend').textContent = info.labels
    ? 'cluster → digit (its label map), by digit'
    : 'by cluster (this model has no label map)';
  fit($('preview'), 112);
  fit($('decoded'), 112);
  explored = -1;
  chosen = -1;
  buildBars();
  buildStyles();
  buildExperts();
  showBoardInfo();
  update();
  return null;
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
    verdict = null;
    $('board-answer').replaceChildren();
    $('verdict').textContent = 'Draw a digit.';
    $('verdict').dataset.cluster = -1;
    $('verdict').dataset.style = -1;
    delete $('verdict').dataset.styleBits;
    showNovelty(null);
    showBars(null);
  } else {
    chosen = wasm.classify();
    const probs = floats(wasm.probabilities_ptr(), info.experts);
    const bits = new Uint32Array(wasm.memory.buffer, wasm.probabilities_ptr(), info.experts);
    const label = wasm.label();
    const digit = label >= 0 ? `digit ${label}` : 'no label map';
    // The style within the cluster and its probability p(style | cluster):
    // style 0 with probability 1 in a flat model.
    const style = wasm.style();
    const styles = wasm.style_count();
    const styleBits = new Uint32Array(wasm.memory.buffer, wasm.style_probabilities_ptr(), styles)[style];
    const styleP = floats(wasm.style_probabilities_ptr(), styles)[style];
    const styleText = twoLevel()
      ? `style ${style} of ${styles}, confidence ${(100 * styleP).toFixed(1)}%`
      : 'style 0 (one style per cluster)';
    // Fixed width and height (style.css) and tabular figures: the text does not move the layout.
    $('verdict').textContent =
      `cluster ${chosen} → ${digit}\nconfidence ${(100 * probs[chosen]).toFixed(1)}%\n${styleText}`;
    Object.assign($('verdict').dataset, { cluster: chosen, label, style, styleBits: hex(styleBits) });
    showNovelty(wasm.novelty_known(), wasm.novelty());
    showBars(Array.from(probs), Array.from(bits));
    verdict = { drawn: ++drawn, cluster: chosen, label, bits: Array.from(bits), style };
    toBoard();
  }
  for (const [k, el] of document.querySelectorAll('.expert').entries()) {
    el.classList.toggle('chosen', k === chosen);
  }
  if (chosen >= 0 && chosen !== explored) explore(chosen);
  else if (explored < 0) explore(0);
  else if (twoLevel()) { // the same expert: only the drawn style's mark moves
    for (const row of $('style-rows').children) {
      row.classList.toggle('chosen', explored === chosen && Number(row.dataset.style) === verdict?.style);
    }
  }
}

// The novelty line under the answer: how unlike the model's training
// digits the drawing is (the score in threshold units; the model's
// calibration puts 1% of its training digits over 1). Over the threshold the
// answer and the bars are greyed: "this does not look like a digit". A
// model without a novelty section says so, quietly. data-known is true,
// false or none, data-bits the score's f32 bits (as harness classify's
// novelty_bits). `known`: 1, 0, or -1 for no score; null: nothing drawn.
function showNovelty(known, score) {
  const el = $('novelty');
  const novel = known === 0;
  $('verdict').classList.toggle('novel', novel);
  $('bars').classList.toggle('novel', novel);
  el.classList.toggle('novel', novel);
  el.classList.toggle('quiet', known === -1 || !info.novelty);
  delete el.dataset.bits;
  if (!info.novelty || known === -1) {
    el.dataset.known = 'none';
    el.textContent = 'this model has no novelty score';
    return;
  }
  if (known === null) {
    el.dataset.known = 'none';
    el.textContent = '';
    return;
  }
  const f32 = new Float32Array([score]);
  el.dataset.bits = hex(new Uint32Array(f32.buffer)[0]);
  el.dataset.known = known === 1 ? 'true' : 'false';
  const shown = Number.isFinite(score) ? score.toFixed(2) : '∞';
  el.textContent = novel
    ? `this does not look like a digit (novelty ${shown} > 1)`
    : `looks like a digit (novelty ${shown} ≤ 1)`;
  el.title = `novelty score ${score} in threshold units: over 1, the input is unlike the model's training digits`;
}

// The gate's bars, one row per cluster, named `cluster → digit` and sorted
// by the digit the label map gives the cluster, then by cluster (by cluster
// alone without a label map): a reader finds digit 7's bar at once. Built
// once per model; showBars only sets widths and numbers, in fixed columns.
function buildBars() {
  const order = [...Array(info.experts).keys()];
  if (info.labels) order.sort((a, b) => info.labels[a] - info.labels[b] || a - b);
  $('bars').replaceChildren(...order.map((k) => {
    const bar = document.createElement('div');
    bar.className = 'bar';
    bar.dataset.cluster = k;
    if (info.labels) bar.dataset.digit = info.labels[k];
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = clusterName(k);
    const track = document.createElement('span');
    track.className = 'track';
    track.append(Object.assign(document.createElement('span'), { className: 'fill' }));
    bar.append(name, track, Object.assign(document.createElement('span'), { className: 'p' }));
    return bar;
  }));
}

// Each bar's probability (its f32 bits in data-bits), the chosen one marked.
function showBars(probs, bits) {
  for (const bar of $('bars').children) {
    const k = Number(bar.dataset.cluster);
    const p = probs ? probs[k] : 0;
    bar.classList.toggle('chosen', k === chosen);
    bar.querySelector('.fill').style.width = `${(100 * p).toFixed(2)}%`;
    bar.querySelector('.p').textContent = probs ? `${(100 * p).toFixed(1)}%` : '';
    if (probs) bar.dataset.bits = bits[k].toString(16).padStart(8, '0');
    else delete bar.dataset.bits;
    bar.title = (info.labels ? `cluster ${k} → digit ${info.labels[k]}` : `cluster ${k}`) + (probs ? `: p = ${p}` : '');
  }
}

function buildExperts() {
  const row = $('samples');
  row.replaceChildren();
  for (let k = 0; k < info.experts; k++) {
    const el = document.createElement('div');
    el.className = 'expert';
    el.title = `expert ${k}: click to explore its latent space`;
    el.append(clusterName(k));
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
  if (explored >= 0) showStyles(explored);
}

// A two-level model's styles: one row per style (as many rows as the
// largest cluster has styles, built once per model, so that the layout does
// not move), each with samples of that style of the explored expert. Hidden
// for a flat model (its one style is the expert's row above).
function buildStyles() {
  const rows = $('style-rows');
  $('styles').hidden = !twoLevel();
  rows.replaceChildren(...Array.from({ length: Math.max(...info.styles) }, (_, s) => {
    const row = document.createElement('div');
    row.className = 'style-row';
    row.dataset.style = s;
    row.append(Object.assign(document.createElement('span'), { className: 'name', textContent: `style ${s}` }));
    for (let i = 0; i < SAMPLES; i++) {
      const canvas = document.createElement('canvas');
      fit(canvas, 42);
      row.append(canvas);
    }
    return row;
  }));
}

// The explored expert's styles, each its samples (the expert's seeds); the
// drawn digit's style marked when the expert is the gate's choice.
function showStyles(k) {
  if (!twoLevel()) return;
  $('styles-expert').textContent = clusterName(k);
  $('styles').dataset.cluster = k;
  for (const row of $('style-rows').children) {
    const s = Number(row.dataset.style);
    const has = s < info.styles[k];
    row.style.visibility = has ? 'visible' : 'hidden';
    row.classList.toggle('chosen', has && k === chosen && s === verdict?.style);
    if (!has) continue;
    for (const [i, canvas] of row.querySelectorAll('canvas').entries()) {
      const ptr = wasm.generate_style(k, s, seed + i);
      if (ptr) paint(canvas, floats(ptr, info.width * info.height), 255);
    }
  }
}

// Sliders over expert k's latent vector, each redrawing its decoder's output.
function explore(k) {
  explored = k;
  $('latent-expert').textContent = clusterName(k);
  showStyles(k);
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

// A model file picked or dropped. Its first bytes (the format's fixed
// frame: magic, version, body length) and its size are checked first, by
// the wasm (web/src/lib.rs check_head: the engine's reasons, and a 16 MiB
// limit): a file that is not a model, or too large, is refused before it is
// read whole. A refused file leaves the picker empty and the model as it was.
async function openFile(file, dropped) {
  if (!file || !wasm) return;
  const picker = $('file');
  const refuse = (why) => {
    picker.value = '';
    showError(`${file.name} rejected: ${why}; ${info ? 'previous model kept' : 'no model loaded'}`);
  };
  try {
    const n = Math.min(file.size, wasm.head_len());
    const head = new Uint8Array(await file.slice(0, n).arrayBuffer());
    bytes(wasm.upload(n), n).set(head);
    if (wasm.check_head(file.size) !== 0) return refuse(text());
    const error = loadModel(new Uint8Array(await file.arrayBuffer()), file.name);
    if (error) return refuse(error);
  } catch (e) {
    return refuse(`cannot read it (${reason(e)})`);
  }
  if (dropped) picker.value = ''; // it would name an older file than the model's
}
$('file').addEventListener('change', (e) => openFile(e.target.files[0], false));
document.addEventListener('dragover', (e) => { e.preventDefault(); document.body.classList.add('dragging'); });
document.addEventListener('dragleave', () => document.body.classList.remove('dragging'));
document.addEventListener('drop', (e) => {
  e.preventDefault();
  document.body.classList.remove('dragging');
  openFile(e.dataTransfer.files[0], true);
});
$('clear').addEventListener('click', () => { clearPad(); update(); });
$('resample').addEventListener('click', resample);
$('zero').addEventListener('click', () => setLatent(() => 0));
$('random').addEventListener('click', () => setLatent(() => gaussian().toFixed(2)));

// ---- Connect a board ---------------------------------------------------
// Web Serial (Chrome, Edge): the port carries the protocol of
// firmware-example/PROTOCOL.md, which the wasm encodes and decodes
// (web/src/board.rs); this part only moves bytes and shows answers. One
// request at a time: a drawing made while the board works waits, and only
// the latest is sent when the answer (or a timeout) comes.
const board = {
  port: null, reader: null, writer: null,
  info: null,      // the board's info answer
  pending: null,   // the request in flight: { id, kind, resolve, timer }
  waiting: false,  // a drawing newer than the one in flight waits
  sent: 0, answers: 0, rejected: 0, stale: 0, timeouts: 0, lineErrors: 0,
  // Milliseconds to wait for an answer: the first (a board may be booting,
  // an emulated one is slow), then each classify.
  timeouts_ms: { first: 60000, next: 30000 },
};
const boardText = () => new TextDecoder().decode(bytes(wasm.board_text_ptr(), wasm.board_text_len()));
// An error's message without its final full stop (the page adds its own).
const reason = (e) => String(e?.message || e).replace(/\.$/, '');
const bitsToFloat = (b) => new Float32Array(new Uint32Array([b]).buffer)[0];

function boardStatus(message) {
  $('board-status').textContent = message;
}

function setBoardState(state) {
  $('board').dataset.state = state;
  $('connect').textContent = state === 'off' ? 'Connect a board' : 'Disconnect the board';
}

async function connectBoard() {
  let port;
  try {
    port = await navigator.serial.requestPort();
    await port.open({ baudRate: 115200 });
  } catch (e) {
    boardStatus(port ? `Cannot open the port: ${reason(e)}.` : `No port chosen (${reason(e)}).`);
    return;
  }
  Object.assign(board, { port, info: null, waiting: false, sent: 0, answers: 0, rejected: 0, stale: 0, timeouts: 0, lineErrors: 0 });
  wasm.board_reset();
  setBoardState('connecting');
  $('board-answer').replaceChildren();
  $('board-answer').removeAttribute('data-agree');
  showBoardInfo();
  try {
    board.writer = port.writable.getWriter();
  } catch (e) {
    lostBoard(port, `cannot write to the port: ${reason(e)}`);
    return;
  }
  readBoard(port);
  boardStatus('Asking the board what it is…');
  const t0 = performance.now();
  const answer = await request(() => wasm.board_info(), 'info', board.timeouts_ms.first);
  if (board.port !== port) return;
  if (answer?.kind === 'info') {
    board.info = answer;
    setBoardState('on');
    boardStatus(`Connected; info answered in ${(performance.now() - t0).toFixed(0)} ms.`);
    showBoardInfo();
    toBoard();
  } else {
    boardStatus(answer ? `The board did not answer info: ${describeFailure(answer)}` : `No answer to info in ${board.timeouts_ms.first / 1000} s: is it the firmware, at 115200 baud?`);
    showBoardInfo();
  }
}

// Bytes from the port, into the wasm's frame reader, until the port ends.
// A line error (framing, parity, break, overrun: a wrong baud rate, a
// glitch) is not fatal in Web Serial: the port gets a new readable stream
// and reading goes on with it.
const LINE_ERRORS = ['BufferOverrunError', 'BreakError', 'FramingError', 'ParityError'];
async function readBoard(port) {
  while (board.port === port) {
    let reader;
    try {
      reader = port.readable.getReader();
      board.reader = reader;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        if (value && value.length) feedBoard(value);
      }
      lostBoard(port, 'the port closed');
      return;
    } catch (e) {
      if (!LINE_ERRORS.includes(e?.name) || !port.readable) {
        lostBoard(port, reason(e));
        return;
      }
      board.lineErrors++;
      boardStatus(`Line error (${reason(e)}); reading on.`);
    } finally {
      try { reader?.releaseLock(); } catch { /* released already */ }
    }
  }
}

function feedBoard(chunk) {
  const n = chunk.length;
  bytes(wasm.board_rx(n), n).set(chunk);
  if (wasm.board_feed(n) <= 0) return;
  for (const event of JSON.parse(boardText())) {
    if (event.event === 'rejected') {
      board.rejected++;
      showBoardCounts();
    } else if (board.pending && event.id === board.pending.id) {
      board.pending.resolve(event);
    } else {
      board.stale++; // an answer after its timeout, or to another host
      showBoardCounts();
    }
  }
}

// Sends the request `encode` writes into the wasm's wire buffer; resolves
// with its answer (a board.rs JSON event), or null on a timeout or a lost port.
function request(encode, kind, timeout) {
  const n = encode();
  if (!n || !board.writer) return Promise.resolve({ event: 'local', error: n ? 'no port' : boardText() });
  const wire = bytes(wasm.board_wire_ptr(), n).slice();
  const id = wasm.board_id();
  const port = board.port;
  return new Promise((resolve) => {
    const done = (answer) => {
      if (board.pending?.id !== id) return;
      clearTimeout(board.pending.timer);
      board.pending = null;
      if (answer) board.answers++;
      else if (board.port === port) board.timeouts++;
      resolve(answer);
    };
    board.pending = { id, kind, resolve: done, timer: setTimeout(() => done(null), timeout) };
    board.sent++;
    board.writer.write(wire).catch((e) => {
      done(null);
      if (board.port === port) lostBoard(port, `cannot write to the port: ${reason(e)}`);
    });
  });
}

// A drawing was classified: the board gets it too, once it is free.
function toBoard() {
  if (!board.port || !board.info || !verdict) return;
  board.waiting = true;
  if (!board.pending) sendDrawings();
}

async function sendDrawings() {
  const port = board.port;
  while (board.port === port && board.waiting && verdict && !board.pending) {
    board.waiting = false;
    const page = verdict; // the page's answer for the image encoded now
    const t0 = performance.now();
    const answer = await request(() => wasm.board_classify(), 'classify', board.timeouts_ms.next);
    if (board.port !== port) return;
    showBoardAnswer(answer, page, performance.now() - t0);
  }
}

function showBoardAnswer(answer, page, ms) {
  const el = $('board-answer');
  if (!verdict) { // the pad was cleared meanwhile
    el.replaceChildren();
    return;
  }
  el.dataset.drawn = page.drawn;
  el.dataset.state = !answer ? 'timeout' : answer.kind === 'classify' ? 'answer' : 'failure';
  el.removeAttribute('data-agree');
  const mark = document.createElement('span');
  mark.className = 'mark';
  if (!answer) {
    el.replaceChildren(`board: no answer in ${board.timeouts_ms.next / 1000} s`);
    return;
  }
  if (answer.kind !== 'classify') {
    mark.textContent = '✗ refused';
    el.replaceChildren(`board: `, mark, ` ${describeFailure(answer)}`);
    return;
  }
  const agree = answer.cluster === page.cluster && answer.confidence === page.bits[page.cluster];
  Object.assign(el.dataset, {
    agree: agree ? 'yes' : 'no',
    cluster: answer.cluster,
    confidence: hex(answer.confidence),
    bits: answer.probabilities.map(hex).join(' '),
    sameBits: String(answer.probabilities.map(hex).join() === page.bits.map(hex).join()),
  });
  const digit = answer.label === null ? 'no label map' : `digit ${answer.label}`;
  mark.textContent = agree ? '✓ same as the page' : '✗ differs from the page';
  mark.title = agree
    ? 'same cluster and the same f32 bits of its confidence'
    : `the page: cluster ${page.cluster}, confidence bits ${hex(page.bits[page.cluster])}; the board: cluster ${answer.cluster}, confidence bits ${hex(answer.confidence)}`;
  el.replaceChildren(
    `board: cluster ${answer.cluster} → ${digit}\nconfidence ${(100 * bitsToFloat(answer.confidence)).toFixed(1)}% `,
    mark,
    `${deviceTime(answer)}round trip ${ms.toFixed(0)} ms`, // the mark is a line of its own
  );
}

const hex = (b) => b.toString(16).padStart(8, '0');

// The device-side cost in its unit: microseconds as ms; cycles and
// instructions as counts (info gives no clock rate to convert them).
function deviceTime(answer) {
  const n = answer.cycles.toLocaleString('en');
  switch (answer.unit) {
    case 'us': return `on the board ${(answer.cycles / 1000).toFixed(2)} ms, `;
    case 'cycles': return `on the board ${n} cycles, `;
    case 'instructions': return `on the board ${n} instructions, `;
    case 'none': return '';
    default: return `on the board ${n} (${answer.unit}), `;
  }
}

function describeFailure(answer) {
  if (answer.event === 'local') return `the page could not send it (${answer.error})`;
  if (answer.event === 'invalid') return `an answer that does not parse (${answer.error})`;
  if (answer.kind !== 'failure') return `an answer of kind ${answer.kind}`;
  const shape = (v) => `${v >>> 16}×${v & 0xffff}`;
  const detail = answer.status === 'ImageSize' ? ` (it runs ${shape(answer.expected)} images, the page sent ${shape(answer.got)})` : '';
  return `${answer.status}${detail}${answer.text ? `: ${answer.text}` : ''}`;
}

function showBoardInfo() {
  const el = $('board-info');
  const i = board.info;
  if (!i) {
    if (board.port) el.textContent = 'A port is open; waiting for the board to say what it is.';
    delete el.dataset.crc;
    return;
  }
  wasm.board_status();
  const banner = JSON.parse(boardText()).banner.trim();
  const same = info && i.model_crc === info.crc;
  const method = i.method === 'mixture of VAEs' ? '' : `, ${i.method}`;
  el.dataset.crc = i.model_crc;
  el.dataset.same = String(!!same);
  el.textContent = `${i.firmware || '(no firmware name)'}: protocol ${i.version}.${i.revision}, `
    + `${i.width}×${i.height} images, ${i.experts} experts, ${i.element} weights${method}, `
    + `model ${i.model_len.toLocaleString('en')} bytes, CRC ${hex(i.model_crc)}: `
    + (same ? 'the page\'s model.' : 'not the page\'s model (answers will differ).')
    + (banner ? `\nit printed: ${banner.split('\n')[0].slice(0, 120)}` : '');
}

function showBoardCounts() {
  const parts = [];
  if (board.rejected) parts.push(`${board.rejected} damaged frame${board.rejected > 1 ? 's' : ''} dropped`);
  if (board.stale) parts.push(`${board.stale} late answer${board.stale > 1 ? 's' : ''} ignored`);
  if (parts.length) boardStatus(`${parts.join(', ')} (noise on the line, or an answer after its timeout).`);
}

// The port went away (unplugged, closed, a write failed): say so, tidy up.
function lostBoard(port, why) {
  if (board.port !== port) return;
  closeBoard();
  boardStatus(`Board lost: ${why}.`);
}

// Forgets the port, then closes it (locks released first, as close() needs).
function closeBoard() {
  const { port, reader, writer, pending } = board;
  Object.assign(board, { port: null, reader: null, writer: null, info: null, waiting: false });
  pending?.resolve(null);
  setBoardState('off');
  showBoardInfo();
  $('board-info').textContent = 'Disconnected.';
  $('board-answer').replaceChildren(); // a gone board's answer would linger, then vanish
  (async () => {
    try { await reader?.cancel(); } catch { /* gone already */ }
    try { reader?.releaseLock(); } catch { /* released by the read loop */ }
    try { writer?.releaseLock(); } catch { /* released already */ }
    try { await port?.close(); } catch { /* closed already, or lost */ }
  })();
}

if (!navigator.serial) {
  $('connect').disabled = true;
  $('board-why').textContent = 'Web Serial needs Chrome or Edge';
  $('connect').title = 'This browser has no Web Serial (navigator.serial): Web Serial needs Chrome or Edge.';
} else {
  let opening = false; // the chooser or open() is pending: one at a time
  $('connect').addEventListener('click', () => {
    if (board.port) {
      closeBoard();
      boardStatus('Disconnected.');
    } else if (!opening) {
      opening = true;
      connectBoard()
        .catch((e) => boardStatus(`Board: ${reason(e)}.`))
        .finally(() => { opening = false; });
    }
  });
}

// For the browser test (web/test/browser.mjs) and the curious.
window.moe = {
  ready: false,
  // The board connection's counters and timeouts (the test shortens them).
  board,
  // The largest model file the page opens (web/src/lib.rs MAX_MODEL_BYTES).
  maxModelBytes: () => wasm.max_model_bytes(),
  // Drawings classified so far: the board's answer names its drawing in
  // #board-answer's data-drawn.
  drawn: () => drawn,
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
    const error = loadModel(new Uint8Array(await response.arrayBuffer()), 'model.bin (served)');
    if (error) showError(`model.bin (served): ${error}`);
  } catch (e) {
    showError(String(e));
  }
  window.moe.ready = true;
})();
