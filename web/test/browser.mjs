// The page in a real Chromium, driven through the DevTools protocol over a
// pipe (--remote-debugging-pipe): Node's standard library only, no npm.
//
//   node web/test/browser.mjs --server target/release/web-serve --harness target/release/harness \
//     [--model M] [--other M2] [--nolabels M0] [--also M3]... [--twolevel M4]... [--eight M8]... [--images IDX.gz] [--wasm W] [--host BIN]...
//     [--board CMD]... [--screenshot PNG] [--chromium PATH]
//
// Checks: the page loads the model and shows its header; the first 100 MNIST
// test images, drawn on the pad and run through the pad's own input path,
// come out of the preprocessing unchanged and get the cluster and the
// probabilities' f32 bits `harness classify --bits` gives; pen strokes (a bar,
// a loop, a seven) get a classification and a non-empty 28×28 preview with
// the harness's bits; the latent sliders redraw the decoder's output;
// generate gives the native bits; a dropped truncated model shows the
// engine's error and keeps the page working; a model opened with the file
// picker replaces the default; each --also model (e.g. int8), opened with the
// file picker, passes the MNIST and generate checks too; every model's
// answer names the style within the cluster with the style and the style
// confidence's f32 bits `harness classify --bits` gives (style 0, bits of
// 1.0, for a flat model, whose style rows stay hidden); each --twolevel model
// (format version 3), opened with the file picker, passes the MNIST and
// generate checks, shows its styles in the header and, for the explored
// expert, one row of samples per style (as many as the harness's `inspect`
// gives the cluster, each drawn, each style's unlike the others'), the drawn
// digit's style framed; each --eight model
// (8×8 images, like scikit-learn's digits), opened with the file picker,
// sizes the page's canvases from its shape, classifies 8×8 images with the
// bits `harness classify --bits` gives (IDX files of 8×8 images written
// here), frames a drawn digit into an 8×8 preview, labels the gate's bars
// by its label map and generates the native bits; the answer's text never
// moves the layout; the wasm is at most 155 KiB. It times classify and
// generate in the browser and natively and prints both.
//
// The page as a new user meets it: the favicon is served; the gate's bars
// are named `cluster → digit` and sorted by digit (by cluster for a model
// without a label map, --nolabels); the page's boxes do not move between
// answers (desktop and phone); at a phone's viewport every touch target is
// at least 44×44 CSS px; a file that is not a model, or over the size limit,
// is refused from its first 20 bytes and its size (every read of a file's
// bytes recorded), the picker emptied, the previous model kept.
//
// "Connect a board": a fake navigator.serial, injected before the page
// loads, hands the page ports whose bytes go through a DevTools binding to
// a device program run here (each --board CMD, with sh -c: anything that
// speaks firmware-example/PROTOCOL.md on stdin/stdout, e.g. `fw-host serve`,
// possibly printing text before its first frame, possibly slow), whose
// stdout comes back into the port's readable stream. For each board: its
// info is shown; if it runs the page's model (same CRC), drawn digits get
// its answers with the page's cluster and f32 bits, a fast run of drawings
// is sent latest-only, random bytes injected on the line and a line error
// do not break it; otherwise its answers are marked as differing. A port that answers only
// garbage times out with a message, a board that dies is reported, a page
// without navigator.serial shows a disabled button with its reason, and no
// exception escapes the page.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';

const args = { host: [], also: [], twolevel: [], eight: [], board: [] };
for (let i = 2; i < process.argv.length; i += 2) {
  const key = process.argv[i].replace(/^--/, '');
  if (Array.isArray(args[key])) args[key].push(process.argv[i + 1]);
  else args[key] = process.argv[i + 1];
}
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const at = (p) => path.resolve(root, p);
const model = at(args.model ?? 'firmware-example/models/default.bin');
const other = at(args.other ?? 'firmware-example/models/small.bin');
const imagesGz = at(args.images ?? 'data/mnist/t10k-images-idx3-ubyte.gz');
const wasmPath = at(args.wasm ?? 'target/web/wasm32-unknown-unknown/release/web.wasm');
const chromium = args.chromium ?? '/usr/bin/chromium';
const N = 100;
const CALLS = 300;

let passed = 0;
let failed = 0;
function check(name, ok, detail = '') {
  if (ok) passed++;
  else failed++;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? ` (${detail})` : ''}`);
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moe-web-'));
const children = [];
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
  try {
    fs.rmSync(tmp, { recursive: true, force: true, maxRetries: 5 });
  } catch {
    // Chromium may still be writing its profile as it dies; /tmp is cleaned anyway.
  }
});

// The first N test images, and IDX files for the harness.
const idx = zlib.gunzipSync(fs.readFileSync(imagesGz));
const images = Array.from({ length: N }, (_, i) => idx.subarray(16 + 784 * i, 16 + 784 * (i + 1)));
// IDX images: big-endian magic 0x00000803, count, rows, columns, then bytes.
function writeIdx(file, list, rows = 28, cols = 28) {
  const head = Buffer.alloc(16);
  head.writeUInt32BE(0x803, 0);
  head.writeUInt32BE(list.length, 4);
  head.writeUInt32BE(rows, 8);
  head.writeUInt32BE(cols, 12);
  fs.writeFileSync(file, Buffer.concat([head, ...list.map((a) => Buffer.from(a))]));
}
function harnessClassify(list, modelPath = model, rows = 28, cols = 28) {
  const file = path.join(tmp, `in-${Math.random()}.idx`);
  writeIdx(file, list, rows, cols);
  // The page's own bytes as they are: no polarity guess (--invert no).
  const out = execFileSync(at(args.harness), ['classify', '--model', modelPath, '--images', file, '--bits', '--invert', 'no']);
  return out.toString().trim().split('\n').slice(1).map((line) => {
    // index,cluster,label,confidence,probability_bits,style,style_confidence,style_confidence_bits,novelty,known,novelty_bits
    const [, cluster, , , bits, style, , styleBits, , known, noveltyBits] = line.split(',');
    // known: true, false, or empty (a model without a novelty section): the page's data-known.
    return { cluster: Number(cluster), bits: bits.split(' '), style: Number(style), styleBits, known: known || 'none', noveltyBits };
  });
}

// The server, on a free port.
const server = spawn(at(args.server), ['--no-build', '--port', '0', '--model', model], { stdio: ['ignore', 'pipe', 'inherit'] });
children.push(server);
const url = await new Promise((resolve, reject) => {
  let out = '';
  server.stdout.on('data', (d) => {
    out += d;
    const m = out.match(/serving (http:\S+)/);
    if (m) resolve(m[1]);
  });
  server.on('exit', (code) => reject(new Error(`web-serve exited with ${code}`)));
});

// Chromium, and a minimal CDP client over its pipe (messages end with a NUL).
const browser = spawn(chromium, [
  '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--disable-dev-shm-usage', '--hide-scrollbars', '--mute-audio', `--user-data-dir=${path.join(tmp, 'profile')}`,
  '--remote-debugging-pipe', 'about:blank',
], { stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'] });
children.push(browser);
const toBrowser = browser.stdio[3];
const fromBrowser = browser.stdio[4];
let nextId = 0;
const waiting = new Map();
let pendingBytes = Buffer.alloc(0);
fromBrowser.on('data', (chunk) => {
  pendingBytes = Buffer.concat([pendingBytes, chunk]);
  let end;
  while ((end = pendingBytes.indexOf(0)) >= 0) {
    const msg = JSON.parse(pendingBytes.subarray(0, end).toString('utf8'));
    pendingBytes = pendingBytes.subarray(end + 1);
    if (msg.id === undefined) {
      onEvent(msg);
      continue;
    }
    const w = waiting.get(msg.id);
    if (w) {
      waiting.delete(msg.id);
      if (msg.error) w.reject(new Error(`${w.method}: ${msg.error.message}`));
      else w.resolve(msg.result);
    }
  }
});
let session;
function send(method, params = {}, sessionId = session) {
  const id = ++nextId;
  toBrowser.write(`${JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) })}\0`);
  return new Promise((resolve, reject) => waiting.set(id, { resolve, reject, method }));
}
async function ev(expression) {
  const r = await send('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true });
  if (r.exceptionDetails) throw new Error(`${expression}: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
  return r.result.value;
}
async function until(expression, ms = 20000) {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (await ev(expression)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

// Events: exceptions the page did not catch, and the fake serial port's
// calls (Runtime.bindingCalled).
const exceptions = [];
const bindings = {};
function onEvent(msg) {
  if (msg.method === 'Runtime.exceptionThrown') {
    const d = msg.params.exceptionDetails;
    exceptions.push(d.exception?.description ?? d.text);
  } else if (msg.method === 'Runtime.bindingCalled') {
    bindings[msg.params.name]?.(JSON.parse(msg.params.payload));
  }
}

// A fake Web Serial, injected before the page's scripts: requestPort()
// returns a port for board number __fakeSerial.next (-1: the user cancels
// the chooser); open() asks Node (binding serialOpen) to start that board,
// the page's writes go to its stdin (serialWrite, base64), and Node puts
// the board's stdout into the readable stream (__fakeSerial.push), ends it
// (end), errors it as an unplugged port does (lose) or as a line error does
// (lineError). close() refuses while the streams are locked, as Chromium's
// does.
const fakeSerial = `(() => {
  const b64 = (u8) => { let s = ''; for (const b of u8) s += String.fromCharCode(b); return btoa(s); };
  const ports = new Map();
  const fake = window.__fakeSerial = { next: 0, opened: [], closed: [], ports,
    push(n, data) { const s = atob(data); ports.get(n)?.controller?.enqueue(Uint8Array.from(s, (c) => c.charCodeAt(0))); },
    end(n) { try { ports.get(n)?.controller?.close(); } catch {} },
    lose(n, why) { try { ports.get(n)?.controller?.error(new DOMException(why, 'NetworkError')); } catch {} },
    // A line error (a framing error: a glitch, a wrong baud rate): as in
    // Chromium, the readable stream errors and the port gets a new one.
    lineError(n) {
      const port = ports.get(n);
      const old = port.controller;
      port.readable = new ReadableStream({ start: (c) => { port.controller = c; } });
      old.error(new DOMException('Framing error.', 'FramingError'));
    },
  };
  class FakePort extends EventTarget {
    constructor(n) { super(); this.n = n; this.readable = null; this.writable = null; }
    getInfo() { return { usbVendorId: 0x2e8a, usbProductId: 0x000a }; }
    async open(options) {
      if (this.readable) throw new DOMException('The port is already open.', 'InvalidStateError');
      const n = this.n;
      this.readable = new ReadableStream({ start: (c) => { this.controller = c; } });
      this.writable = new WritableStream({ write: (chunk) => window.serialWrite(JSON.stringify({ n, data: b64(chunk) })) });
      fake.opened.push({ n, baudRate: options?.baudRate });
      window.serialOpen(JSON.stringify({ n }));
    }
    async close() {
      if (this.readable?.locked || this.writable?.locked) throw new TypeError('Cannot cancel a locked stream');
      this.readable = this.writable = null;
      fake.closed.push(this.n);
      window.serialClose(JSON.stringify({ n: this.n }));
    }
  }
  const serial = new (class extends EventTarget {
    async requestPort() {
      const n = fake.next;
      if (n < 0) throw new DOMException('No port selected by the user.', 'NotFoundError');
      const port = new FakePort(n);
      ports.set(n, port);
      return port;
    }
    async getPorts() { return [...ports.values()]; }
  })();
  Object.defineProperty(Navigator.prototype, 'serial', { configurable: true, get: () => serial });
})();`;

// The boards: each --board CMD, then a port that sends only noise (random
// bytes, zeros among them) and never answers.
const boardCommands = [...args.board, 'head -c 3000 /dev/urandom; exec cat >/dev/null'];
const NOISE = boardCommands.length - 1;
const boardProcs = new Map();
bindings.serialOpen = ({ n }) => {
  const child = spawn('sh', ['-c', boardCommands[n]], { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] });
  children.push(child);
  const entry = { child, open: true, stderr: '', bytesIn: 0 };
  boardProcs.set(n, entry);
  child.stdin.on('error', () => {}); // a board that exits: the page learns it from the stream
  child.stderr.on('data', (d) => { entry.stderr = (entry.stderr + d).slice(-2000); });
  child.stdout.on('data', (d) => {
    if (entry.open) send('Runtime.evaluate', { expression: `__fakeSerial.push(${n}, '${d.toString('base64')}')` }).catch(() => {});
  });
  child.on('exit', () => {
    if (!entry.open) return;
    entry.open = false;
    send('Runtime.evaluate', { expression: `__fakeSerial.lose(${n}, 'The device has been lost.')` }).catch(() => {});
  });
};
bindings.serialWrite = ({ n, data }) => {
  const entry = boardProcs.get(n);
  const buf = Buffer.from(data, 'base64');
  if (entry?.open) {
    entry.bytesIn += buf.length;
    entry.child.stdin.write(buf);
  }
};
bindings.serialClose = ({ n }) => {
  const entry = boardProcs.get(n);
  if (entry?.open) {
    entry.open = false;
    entry.child.kill('SIGTERM');
  }
};

const t0 = Date.now();
const { targetId } = await send('Target.createTarget', { url: 'about:blank' }, null);
({ sessionId: session } = await send('Target.attachToTarget', { targetId, flatten: true }, null));
await send('Emulation.setDeviceMetricsOverride', { width: 1040, height: 1120, deviceScaleFactor: 1, mobile: false });
await send('Runtime.enable');
for (const name of ['serialOpen', 'serialWrite', 'serialClose']) await send('Runtime.addBinding', { name });
await send('Page.enable');
const { identifier: fakeSerialScript } = await send('Page.addScriptToEvaluateOnNewDocument', { source: fakeSerial });
await send('Page.navigate', { url });
const loaded = await until('window.moe && moe.ready && !!document.querySelector(".bar")');
check('page loads the wasm and the served model', loaded, loaded ? '' : await ev('document.getElementById("error-text").textContent'));
if (!loaded) {
  console.log(`\n${passed} passed, ${failed} failed`);
  process.exit(1);
}
const inspect = await ev('document.getElementById("inspect").textContent');
const experts = await ev('document.querySelectorAll(".bar").length');
check('header shown as harness inspect shows it', /format version \d+, \d+ bytes/.test(inspect) && inspect.includes(`experts ${experts},`), inspect.split('\n')[2]);
check('no error shown at start', await ev('document.getElementById("error").hidden'));
console.log(`  (page ready in ${Date.now() - t0} ms)`);

// The favicon: linked from the page and served (200, SVG).
{
  const href = await ev('document.querySelector("link[rel=icon]")?.href ?? ""');
  const r = href ? await fetch(href) : null;
  const body = r ? await r.text() : '';
  check('the favicon is linked and served (HTTP 200, image/svg+xml, an SVG)', href.endsWith('/favicon.svg') && r.status === 200
    && r.headers.get('content-type') === 'image/svg+xml' && body.startsWith('<svg'), `${href}: ${r?.status} ${r?.headers.get('content-type')}`);
}

// The gate's bars: named `cluster → digit` and sorted by digit, then
// cluster (with a label map); named and sorted by cluster without one.
async function barsCheck(name) {
  const map = (await ev('document.getElementById("inspect").textContent')).match(/label map \(cluster -> digit\) \[([^\]]*)\]/);
  const labels = map ? map[1].split(', ').map(Number) : null;
  const rows = await ev(`[...document.querySelectorAll('.bar')].map((b) => [Number(b.dataset.cluster), b.querySelector('.name').textContent, b.title])`);
  const order = rows.map((_, k) => k);
  if (labels) order.sort((a, b) => labels[a] - labels[b] || a - b);
  const want = order.map((k) => [k, labels ? `${k} → ${labels[k]}` : `${k}`, labels ? `cluster ${k} → digit ${labels[k]}` : `cluster ${k}`]);
  const legend = await ev('document.getElementById("bars-legend").textContent');
  check(`${name}: the gate's bars are named ${labels ? '"cluster → digit" in digit order' : 'by cluster in cluster order (no label map)'}`,
    rows.length === want.length && rows.every(([k, n, t], i) => k === want[i][0] && n === want[i][1] && t.startsWith(want[i][2]))
      && (labels ? legend.includes('by digit') : legend.includes('no label map')),
    rows.map(([, n]) => n).join(', '));
}
await barsCheck(path.basename(model));

// What the page shows: the verdict's cluster, the bars' f32 bits, the
// preview (at the model's shape), where the latent section starts (which
// the answer's text must not move).
const shown = `(() => {
  const p = document.getElementById('preview');
  return {
    cluster: Number(document.getElementById('verdict').dataset.cluster),
    style: Number(document.getElementById('verdict').dataset.style),
    styleBits: document.getElementById('verdict').dataset.styleBits,
    // The novelty line: true, false or none, the score's f32 bits ('' without one), its text, and whether the answer is greyed.
    known: document.getElementById('novelty').dataset.known,
    noveltyBits: document.getElementById('novelty').dataset.bits ?? '',
    noveltyText: document.getElementById('novelty').textContent,
    greyed: document.getElementById('verdict').classList.contains('novel') && document.getElementById('bars').classList.contains('novel'),
    verdictColour: getComputedStyle(document.getElementById('verdict')).color,
    // In cluster order (the bars are shown in digit order).
    bits: [...document.querySelectorAll('.bar')].sort((a, b) => a.dataset.cluster - b.dataset.cluster).map((b) => b.dataset.bits),
    preview: [...p.getContext('2d').getImageData(0, 0, p.width, p.height).data].filter((_, i) => i % 4 === 0),
    shape: [p.width, p.height],
    latentX: document.getElementById('latent').getBoundingClientRect().left,
  };
})()`;
const latentXs = new Set();

// 0. Connect a board (the fake Web Serial above; the device programs of --board).
const boardState = `(() => {
  const a = document.getElementById('board-answer');
  const i = document.getElementById('board-info');
  const m = a.querySelector('.mark');
  return { state: document.getElementById('board').dataset.state, button: document.getElementById('connect').textContent,
    disabled: document.getElementById('connect').disabled, why: document.getElementById('board-why').textContent,
    info: i.textContent, crc: i.dataset.crc, same: i.dataset.same, status: document.getElementById('board-status').textContent,
    answer: a.textContent, drawn: Number(a.dataset.drawn), answerState: a.dataset.state, agree: a.dataset.agree,
    cluster: Number(a.dataset.cluster), confidence: a.dataset.confidence, bits: a.dataset.bits,
    mark: m ? m.textContent : '', markShown: !!m && m.getBoundingClientRect().width > 0, markColour: m ? getComputedStyle(m).color : '',
    sent: moe.board.sent, pending: !!moe.board.pending, rejected: moe.board.rejected, pageDrawn: moe.drawn() };
})()`;
const BOARD_WAIT = 90000; // a slow (emulated) board: generous
const modelCrc = fs.readFileSync(model).readUInt32LE(16); // the model file header's CRC-32
const one = (t) => t.replace(/\n/g, ' / ');
const click = () => ev('(document.getElementById("connect").click(), true)');
async function connectBoard(n) {
  await ev(`(__fakeSerial.next = ${n}, true)`);
  await click();
  // Until the info answer, or the page gives up (lost, timed out).
  await until(`document.getElementById('board-info').dataset.crc !== undefined || document.getElementById('board').dataset.state === 'off'
    || document.getElementById('board-status').textContent.startsWith('No answer')`, BOARD_WAIT);
  return ev(boardState);
}
async function disconnectBoard(n) {
  await click();
  return until(`document.getElementById('board').dataset.state === 'off' && __fakeSerial.closed.includes(${n})`, 5000);
}
// Draws `list` (images of the page model's shape) in one go and waits for
// the board's answer to the last one: [the page's answer, the board's state].
async function drawForBoard(list) {
  const page = await ev(`(${JSON.stringify(list.map((a) => Array.from(a)))}.forEach((img) => moe.drawImage(img)), ${shown})`);
  latentXs.add(page.latentX);
  const drawnNow = await ev('moe.drawn()');
  await until(`Number(document.getElementById('board-answer').dataset.drawn) === ${drawnNow} && !moe.board.pending`, BOARD_WAIT);
  const state = await ev(boardState);
  latentXs.add((await ev(shown)).latentX);
  boardBoxes.add(await ev('JSON.stringify(["board", "experts"].map((id) => document.getElementById(id).getBoundingClientRect().height + " " + document.getElementById(id).getBoundingClientRect().top))'));
  return [page, state];
}
async function boardShot(n) {
  if (!args.screenshot) return;
  const png = Buffer.from((await send('Page.captureScreenshot', { format: 'png' })).data, 'base64');
  fs.writeFileSync(at(args.screenshot.replace(/\.png$/, `-board${n + 1}.png`)), png);
}
const sameAsPage = (page, b) => b.drawn === b.pageDrawn && b.agree === 'yes' && b.mark === '✓ same as the page'
  && b.cluster === page.cluster && b.confidence === page.bits[page.cluster] && b.bits === page.bits.join(' ');
const random0 = prng(22);
const boardBoxes = new Set(); // the board section's height and the experts' top, each answer shown
for (const [n, cmd] of args.board.entries()) {
  const short = cmd.replace(/'?(?:[^\s']*\/)+([^\s'/]+)'?/g, '$1'); // paths by their file names
  const name = `board ${n + 1} (${short.length > 70 ? `${short.slice(0, 67)}...` : short})`;
  const t1 = Date.now();
  let st = await connectBoard(n);
  const opened = await ev('__fakeSerial.opened.at(-1)');
  const up = st.crc !== undefined;
  check(`${name}: connected at 115200 baud, what the board is shown`, up && opened?.baudRate === 115200
    && /protocol 1\.\d+, \d+×\d+ images, \d+ experts, \w+ weights/.test(st.info) && st.state === 'on',
  `${one(st.info)}${up ? '' : `; ${st.status}; stderr: ${boardProcs.get(n)?.stderr}`} (${Date.now() - t1} ms)`);
  if (!up) {
    await disconnectBoard(n);
    continue;
  }
  if (Number(st.crc) === modelCrc) {
    check(`${name}: says it runs the page's model`, st.same === 'true' && st.info.includes('the page\'s model.'));
    // Digits drawn one by one: the board's answer for each, beside the page's.
    const rows = [];
    boardBoxes.clear();
    for (const img of images.slice(0, 10)) rows.push(await drawForBoard([img]));
    const agree = rows.filter(([page, b]) => sameAsPage(page, b)).length;
    check(`${name}: 10 MNIST digits drawn: the board answers each with the page's cluster and every probability's f32 bits, marked the same`,
      agree === rows.length, `${agree}/${rows.length}; ${one(rows[0][1].answer)}`);
    check(`${name}: the answer shows the board's time and the round trip`, rows.every(([, b]) => /round trip \d+ ms/.test(b.answer)), one(rows.at(-1)[1].answer));
    check(`${name}: its answers do not move the layout (the board section's height and the experts' top the same for the 10)`, boardBoxes.size === 1, [...boardBoxes].join(' | '));
    await boardShot(n);
    // Drawings faster than the board: one request at a time, the latest sent.
    const before = rows.at(-1)[1].sent;
    const [lastPage, burst] = await drawForBoard(images.slice(10, 30));
    st = burst;
    const sent = st.sent - before;
    check(`${name}: 20 digits drawn at once: one request at a time, then only the latest drawing, answered with the page's bits`,
      sent === 2 && sameAsPage(lastPage, st), `${sent} requests for 20 drawings; ${one(st.answer)}`);
    // Noise on the line between answers: dropped, counted, the next answer read.
    const noise = Buffer.from(Array.from({ length: 2000 }, () => (random0() < 0.06 ? 0 : Math.floor(random0() * 256))));
    await send('Runtime.evaluate', { expression: `__fakeSerial.push(${n}, '${noise.toString('base64')}')` });
    const [page, b] = await drawForBoard([images[30]]);
    check(`${name}: 2,000 random bytes injected on the line: frames dropped and counted, the next answer still the page's`,
      b.rejected > 0 && sameAsPage(page, b) && /damaged frames? dropped/.test(b.status), `${b.rejected} dropped; ${b.status}`);
    // A line error (the stream errors, the port gets a new one): reading goes on.
    await ev(`(__fakeSerial.lineError(${n}), true)`);
    await until('moe.board.lineErrors > 0', 5000);
    const lineStatus = (await ev(boardState)).status;
    const [page2, b2] = await drawForBoard([images[31]]);
    check(`${name}: a line error (framing): reported, reading goes on with the port's new stream, the next answer the page's`,
      lineStatus.startsWith('Line error') && sameAsPage(page2, b2) && b2.state === 'on', lineStatus);
  } else {
    check(`${name}: says it runs another model than the page`, st.same === 'false' && st.info.includes('not the page\'s model'), one(st.info));
    const [, b] = await drawForBoard([images[0]]);
    check(`${name}: another model: its answer is marked as differing from the page's`,
      (b.agree === 'no' && b.mark === '✗ differs from the page' || b.answerState === 'failure' && b.mark === '✗ refused') && b.markShown && b.markColour === 'rgb(138, 16, 16)',
      `${one(b.answer)}`);
    await boardShot(n);
  }
  check(`${name}: "Disconnect the board" closes the port and ends the device program`, await disconnectBoard(n) && !boardProcs.get(n).open);
}
// A port that sends only noise: info times out (shortened here) with a
// message; the page keeps classifying.
{
  await ev('(moe.board.timeouts_ms.first = 3000, true)');
  const st = await connectBoard(NOISE);
  const page = await ev(`(moe.drawImage(${JSON.stringify(Array.from(images[1]))}), ${shown})`);
  check('a port that answers only noise: no answer to info, a message, its frames dropped, the page still classifies',
    st.status.startsWith('No answer to info in 3 s') && st.rejected > 0 && page.cluster >= 0, `${st.status}; ${st.rejected} frames dropped`);
  await disconnectBoard(NOISE);
  await ev('(moe.board.timeouts_ms.first = 60000, true)');
}
// A board that dies while connected (its program killed): reported, and
// the page goes on.
if (args.board.length) {
  const st = await connectBoard(0);
  boardProcs.get(0).child.kill('SIGKILL');
  await until('document.getElementById("board-status").textContent.startsWith("Board lost")', 10000);
  const after = await ev(boardState);
  const page = await ev(`(moe.drawImage(${JSON.stringify(Array.from(images[2]))}), ${shown})`);
  check('a board that disappears: "Board lost" shown, the button back to "Connect a board", the page still classifies',
    st.state === 'on' && after.state === 'off' && after.button === 'Connect a board' && page.cluster >= 0 && after.sent === st.sent, after.status);
}
// The chooser cancelled.
await ev('(__fakeSerial.next = -1, true)');
await click();
await until('document.getElementById("board-status").textContent.startsWith("No port chosen")', 5000);
check('the port chooser cancelled: a message, nothing connected', (await ev(boardState)).state === 'off', (await ev(boardState)).status);

// 1. The first 100 MNIST test images, drawn on the pad, against the harness;
// generate against native; timings.
async function mnistCheck(modelPath, name) {
  const pageRows = [];
  for (const img of images) {
    pageRows.push(await ev(`(moe.drawImage(${JSON.stringify(Array.from(img))}), ${shown})`));
    latentXs.add(pageRows.at(-1).latentX);
  }
  const unchanged = pageRows.filter((r, i) => r.preview.every((v, j) => v === images[i][j])).length;
  check(`${name}: MNIST images drawn on the pad come out of the preprocessing unchanged`, unchanged === N, `${unchanged}/${N}`);
  const onRaw = harnessClassify(images, modelPath);
  const onPreview = harnessClassify(pageRows.map((r) => r.preview), modelPath);
  let sameBits = 0;
  for (let i = 0; i < N; i++) {
    const ok = pageRows[i].cluster === onRaw[i].cluster
      && pageRows[i].bits.join() === onRaw[i].bits.join()
      && pageRows[i].bits.join() === onPreview[i].bits.join();
    sameBits += ok;
    if (!ok) check(`${name}: image ${i}: cluster and probability bits as harness classify`, false, `page ${pageRows[i].cluster} ${pageRows[i].bits.join(' ')}, harness ${onRaw[i].cluster} ${onRaw[i].bits.join(' ')}`);
  }
  check(`${name}: ${N} MNIST images: cluster and every probability's f32 bits as harness classify`, sameBits === N, `${sameBits}/${N}`);
  // The style within the cluster and its confidence's f32 bits.
  const sameStyle = pageRows.filter((r, i) => r.style === onRaw[i].style && r.styleBits === onRaw[i].styleBits
    && r.style === onPreview[i].style && r.styleBits === onPreview[i].styleBits).length;
  const styles = new Set(pageRows.map((r) => r.style));
  check(`${name}: ${N} MNIST images: style and the style confidence's f32 bits as harness classify (styles seen: ${[...styles].sort().join(', ')})`,
    sameStyle === N, `${sameStyle}/${N}; image 0: page ${pageRows[0].style} ${pageRows[0].styleBits}, harness ${onRaw[0].style} ${onRaw[0].styleBits}`);
  // The novelty: known or not (or none, for a model without a novelty
  // section) and the score's f32 bits, as harness classify's.
  const sameNovelty = pageRows.filter((r, i) => r.known === onRaw[i].known && r.noveltyBits === onRaw[i].noveltyBits
    && r.known === onPreview[i].known && r.noveltyBits === onPreview[i].noveltyBits
    && r.greyed === (r.known === 'false')).length;
  const verdicts = pageRows.reduce((m, r) => ({ ...m, [r.known]: (m[r.known] ?? 0) + 1 }), {});
  const seen = Object.entries(verdicts).map(([k, n]) => `${k === 'true' ? 'known' : k === 'false' ? 'not known' : 'no score'} ${n}`).join(', ');
  check(`${name}: ${N} MNIST images: novelty and its f32 bits as harness classify (${seen})`,
    sameNovelty === N, `${sameNovelty}/${N}; image 0: page ${pageRows[0].known} ${pageRows[0].noveltyBits}, harness ${onRaw[0].known} ${onRaw[0].noveltyBits}`);
  return pageRows;
}
const timings = [];
async function timeAndGenerate(modelPath, name, image = images[N - 1]) {
  // On the pad's image (MNIST test image 99, or the last 8×8 image drawn).
  const load = os.loadavg()[0];
  const web = await ev(`moe.bench(${CALLS})`);
  fs.writeFileSync(path.join(tmp, 'image.raw'), image);
  const native = args.host.map((bin) => JSON.parse(execFileSync(at(bin), [modelPath, path.join(tmp, 'image.raw'), String(CALLS)]).toString()));
  timings.push({ name, load, web, native, what: image === images[N - 1] ? 'MNIST test image 99' : 'the last 8×8 image drawn' });
  const hash = await ev('moe.generateHash()');
  check(`${name}: generate gives the native bits (every expert, seeds 0-3)`, native.length > 0 && native.every((n) => n.generate_fnv === hash), `${hash} vs ${native.map((n) => n.generate_fnv).join(', ')}`);
}
await mnistCheck(model, path.basename(model));
await timeAndGenerate(model, path.basename(model));
// The style rows, as the page shows them: the block's state and, for each
// row, its style, whether it is shown and framed, and its samples' pixels.
const styleRows = `(() => {
  const st = document.getElementById('styles');
  return { hidden: st.hidden, shown: st.getBoundingClientRect().height > 0, cluster: Number(st.dataset.cluster),
    expert: document.getElementById('styles-expert').textContent,
    rows: [...document.querySelectorAll('.style-row')].map((r) => ({ style: Number(r.dataset.style),
      visible: getComputedStyle(r).visibility !== 'hidden', chosen: r.classList.contains('chosen'),
      samples: [...r.querySelectorAll('canvas')].map((c) => [...c.getContext('2d').getImageData(0, 0, c.width, c.height).data].filter((_, i) => i % 4 === 0)) })) };
})()`;
{
  const flat = await ev(styleRows);
  check(`${path.basename(model)}: a flat model: the answer says style 0, the style rows stay hidden`,
    flat.hidden && !flat.shown && (await ev('document.getElementById("verdict").textContent')).includes('style 0'), JSON.stringify({ hidden: flat.hidden, shown: flat.shown }));
}

// The layout does not move when the answer changes: the boxes of the page's
// blocks (the pad, the answer, the bars, the latent section, the experts,
// the model) are the same, to the pixel, for two drawings the gate answers
// differently and for the empty pad.
const boxes = `(() => Object.fromEntries(['pad', 'verdict', 'bars', 'board', 'latent', 'latent-expert', 'experts', 'model'].map((id) => {
  const r = document.getElementById(id).getBoundingClientRect();
  return [id, [r.left, r.top, r.width, r.height].map((v) => Math.round(v * 100) / 100).join(' ')];
})))()`;
const pageCluster = (img) => ev(`(moe.drawImage(${JSON.stringify(Array.from(img))}), Number(document.getElementById('verdict').dataset.cluster))`);
const c0 = await pageCluster(images[0]);
let differ = 1;
while (differ < N && await pageCluster(images[differ]) === c0) differ++;
async function layoutCheck(name) {
  const texts = [];
  const seen = [];
  for (const img of [images[0], images[differ], new Uint8Array(images[0].length), images[differ]]) {
    await ev(`moe.drawImage(${JSON.stringify(Array.from(img))})`);
    texts.push(await ev('document.getElementById("verdict").textContent.replace(/\\n/g, ", ")'));
    seen.push(JSON.stringify(await ev(boxes)));
  }
  const moved = seen.findIndex((b) => b !== seen[0]);
  check(`${name}: the layout does not move between answers (pad, answer, bars, latent, experts, model boxes unchanged)`,
    differ < N && moved < 0 && new Set(texts).size === 3, moved < 0 ? texts.join(' | ') : `${texts[0]}: ${seen[0]} | ${texts[moved]}: ${seen[moved]}`);
}
await layoutCheck('desktop 1040 px');

// A phone (390×844, mobile): every button, link, input and the pad at
// least 44×44 CSS px, nothing wider than the screen, the layout as steady.
await send('Emulation.setDeviceMetricsOverride', { width: 390, height: 844, deviceScaleFactor: 2, mobile: true });
await until('document.documentElement.clientWidth === 390', 5000);
{
  const viewport = await ev('document.querySelector("meta[name=viewport]")?.content ?? ""');
  const targets = await ev(`[...document.querySelectorAll('button, a[href], input, select, #pad, .expert')].map((e) => {
    const r = e.getBoundingClientRect();
    return { what: e.id || e.className || e.tagName.toLowerCase(), w: Math.round(r.width * 10) / 10, h: Math.round(r.height * 10) / 10 };
  }).filter((t) => t.w > 0)`);
  const small = targets.filter((t) => t.w < 44 || t.h < 44);
  check('phone 390×844: every button, link, input, slider, expert and the pad is at least 44×44 CSS px, with a viewport meta tag',
    viewport.includes('width=device-width') && targets.length >= 8 && small.length === 0,
    small.length ? JSON.stringify(small.slice(0, 5)) : `${targets.length} targets; smallest ${Math.min(...targets.map((t) => t.h))} px high`);
  const wide = await ev('document.documentElement.scrollWidth');
  check('phone 390×844: nothing wider than the screen', wide <= 390, `${wide} px`);
  await layoutCheck('phone 390 px');
  if (args.screenshot) {
    const png = Buffer.from((await send('Page.captureScreenshot', { format: 'png', captureBeyondViewport: true,
      clip: { x: 0, y: 0, width: 390, height: await ev('document.documentElement.scrollHeight'), scale: 1 } })).data, 'base64');
    fs.writeFileSync(at(args.screenshot.replace(/\.png$/, '-phone.png')), png);
  }
}
await send('Emulation.setDeviceMetricsOverride', { width: 1040, height: 1120, deviceScaleFactor: 1, mobile: false });
await until('document.documentElement.clientWidth === 1040', 5000);

// 2. Pen strokes through pointer events.
async function stroke(points) {
  // Measured each time: the error line, when shown, moves the pad down.
  const box = await ev('(() => { const r = document.getElementById("pad").getBoundingClientRect(); return [r.left, r.top, r.width / 280]; })()');
  const at2 = ([x, y]) => ({ x: box[0] + x * box[2], y: box[1] + y * box[2] });
  await send('Input.dispatchMouseEvent', { type: 'mousePressed', ...at2(points[0]), button: 'left', buttons: 1, clickCount: 1 });
  for (const p of points.slice(1)) await send('Input.dispatchMouseEvent', { type: 'mouseMoved', ...at2(p), button: 'left', buttons: 1 });
  await send('Input.dispatchMouseEvent', { type: 'mouseReleased', ...at2(points.at(-1)), button: 'left', buttons: 0, clickCount: 1 });
}
const clear = () => ev('(document.getElementById("clear").click(), true)');
const line = (a, b, n = 12) => Array.from({ length: n + 1 }, (_, i) => [a[0] + (b[0] - a[0]) * i / n, a[1] + (b[1] - a[1]) * i / n]);
const loop = Array.from({ length: 41 }, (_, i) => [140 + 55 * Math.sin(2 * Math.PI * i / 40), 140 - 85 * Math.cos(2 * Math.PI * i / 40)]);
const strokes = { 'a vertical bar': [line([140, 40], [140, 240])], 'a loop': [loop], 'a seven': [line([70, 50], [210, 50]), line([210, 50], [120, 240])] };
const strokeRows = [];
for (const [name, parts] of Object.entries(strokes)) {
  await clear();
  for (const p of parts) await stroke(p);
  const r = await ev(shown);
  const ink = r.preview.reduce((a, b) => a + b, 0);
  const text = await ev('document.getElementById("verdict").textContent.replace(/\\n/g, ", ")');
  check(`${name} drawn with the pointer: classified, non-empty preview`, r.cluster >= 0 && ink > 0 && r.bits.every(Boolean), `${text}; preview ink ${ink}`);
  strokeRows.push(r);
}
// Scribbles, not digits, drawn with the pointer: eight of one random
// stroke through three random points (seeds 1-8), then a tangle of six
// random strokes, nine horizontal lines, a grid of 5 + 5 lines and the pad
// filled (27 overlapping lines). The shipped model flags only some such
// inputs (docs/measurements/novelty.md: about half of random strokes), so
// the check says how many are flagged, needs at least one (the flagged
// answer's path), and every answer to show its verdict: flagged ones say
// "this does not look like a digit" with the answer and the bars greyed,
// the others "looks like a digit", ungreyed. A real digit (MNIST test
// image 0, drawn on the pad) is not flagged.
const scribbleSets = [];
for (let seed = 1; seed <= 8; seed++) {
  let x = seed * 7919;
  const rnd = () => (x = (x * 1103515245 + 12345) % 2147483648) / 2147483648;
  const corners = Array.from({ length: 3 }, () => [20 + 240 * rnd(), 20 + 240 * rnd()]);
  scribbleSets.push([corners.slice(1).flatMap((c, i) => line(corners[i], c, 12))]);
}
{
  let x = 2026;
  const rnd = () => (x = (x * 1103515245 + 12345) % 2147483648) / 2147483648;
  scribbleSets.push(Array.from({ length: 6 }, () => {
    const corners = Array.from({ length: 6 }, () => [20 + 240 * rnd(), 20 + 240 * rnd()]);
    return corners.slice(1).flatMap((c, i) => line(corners[i], c, 8));
  }));
}
const across = (n) => Array.from({ length: n }, (_, i) => line([20, 20 + 240 * i / (n - 1)], [260, 20 + 240 * i / (n - 1)]));
const down = (n) => Array.from({ length: n }, (_, i) => line([20 + 240 * i / (n - 1), 20], [20 + 240 * i / (n - 1), 260]));
scribbleSets.push(across(9), [...across(5), ...down(5)], across(27));
const scribbles = [];
for (const parts of scribbleSets) {
  await clear();
  for (const p of parts) await stroke(p);
  scribbles.push(await ev(shown));
}
strokeRows.push(...scribbles);
const digitShown = await ev(`(moe.drawImage(${JSON.stringify(Array.from(images[0]))}), ${shown})`);
const flagged = scribbles.filter((r) => r.known === 'false');
if (scribbles.every((r) => r.known === 'none')) {
  check(`${path.basename(model)}: scribbles flagged: the page's model has no novelty score`, false, scribbles[0].noveltyText);
} else {
  check(`${scribbles.length} scribbles drawn with the pointer: ${flagged.length} flagged "this does not look like a digit", the answer and bars greyed; the others "looks like a digit" (novelty: ${scribbles.map((r) => r.noveltyText.replace(/.*novelty (\S+).*/, '$1')).join(', ')})`,
    flagged.length > 0 && scribbles.every((r) => (r.known === 'false'
      ? r.noveltyText.startsWith('this does not look like a digit') && r.greyed && r.verdictColour !== digitShown.verdictColour
      : r.known === 'true' && r.noveltyText.startsWith('looks like a digit') && !r.greyed)),
    scribbles.map((r) => `${r.known}: ${r.noveltyText}${r.greyed ? ', greyed' : ''}`).join('; '));
  check(`a real digit (MNIST test image 0) is not flagged, the answer not greyed (${one(digitShown.noveltyText)})`,
    digitShown.known === 'true' && digitShown.noveltyText.startsWith('looks like a digit') && !digitShown.greyed, `known ${digitShown.known}`);
}
const strokeHarness = harnessClassify(strokeRows.map((r) => r.preview));
check('strokes: probability bits as harness classify on their previews', strokeRows.every((r, i) => r.cluster === strokeHarness[i].cluster && r.bits.join() === strokeHarness[i].bits.join()));
check('strokes and scribbles: novelty and its f32 bits as harness classify on their previews',
  strokeRows.every((r, i) => r.known === strokeHarness[i].known && r.noveltyBits === strokeHarness[i].noveltyBits),
  strokeRows.map((r, i) => `${r.known} ${r.noveltyBits} / ${strokeHarness[i].known} ${strokeHarness[i].noveltyBits}`).join('; '));

// 3. Experts: the sliders redraw the decoder's output.
const decoded = '(() => { const d = document.getElementById("decoded"); return Array.from(d.getContext("2d").getImageData(0, 0, d.width, d.height).data).join(); })()';
const before = await ev(decoded);
await ev('(() => { const s = document.getElementById("z0"); s.value = 2.5; s.dispatchEvent(new Event("input")); return true; })()');
check('a latent slider redraws the decoder output', (await ev(decoded)) !== before);
check('a sample per expert and seed shown', (await ev('document.querySelectorAll(".expert canvas").length')) >= experts);
fs.writeFileSync(path.join(tmp, 'screenshot.png'), Buffer.from((await send('Page.captureScreenshot', { format: 'png' })).data, 'base64'));

// 4. A truncated model dropped on the page, then a good one from the file
// picker, then files refused from their first bytes and their size. Every
// read of a file's bytes in the page is recorded (Blob/File arrayBuffer,
// text, stream, FileReader), to show that a refused file is never read whole.
await ev(`(() => {
  window.__reads = [];
  for (const m of ['arrayBuffer', 'text', 'stream', 'bytes']) {
    const f = Blob.prototype[m];
    if (f) Blob.prototype[m] = function (...a) { __reads.push(this.size); return f.apply(this, a); };
  }
  for (const m of ['readAsArrayBuffer', 'readAsBinaryString', 'readAsDataURL', 'readAsText']) {
    const f = FileReader.prototype[m];
    FileReader.prototype[m] = function (b, ...a) { __reads.push(b.size); return f.call(this, b, ...a); };
  }
  return true;
})()`);
const truncated = path.join(tmp, 'truncated.bin');
fs.writeFileSync(truncated, fs.readFileSync(model).subarray(0, 1000));
const drop = { x: 500, y: 500, data: { items: [], files: [truncated], dragOperationsMask: 1 } };
for (const type of ['dragEnter', 'dragOver', 'drop']) await send('Input.dispatchDragEvent', { type, ...drop });
await until('!document.getElementById("error").hidden', 5000);
const error = await ev('document.getElementById("error-text").textContent');
const truncatedReads = await ev('__reads');
check('a dropped truncated model is refused from its header with the engine\'s one-line error, without reading it whole',
  error === 'truncated.bin rejected: truncated model: needs 932160 bytes, only 1000 present; previous model kept'.replace('932160', fs.statSync(model).size)
    && truncatedReads.length > 0 && truncatedReads.every((n) => n <= 20), `${error}; reads ${truncatedReads.join(', ')}`);
await clear();
await stroke(line([140, 40], [140, 240]));
const after = await ev(shown);
check('after the bad file the page still classifies with the previous model', after.cluster >= 0 && after.bits.length === experts, await ev('document.getElementById("verdict").textContent.replace(/\\n/g, ", ")'));
async function pick(file) {
  const { root: doc } = await send('DOM.getDocument');
  const { nodeId } = await send('DOM.querySelector', { nodeId: doc.nodeId, selector: '#file' });
  await send('DOM.setFileInputFiles', { nodeId, files: [file] });
  return until(`document.getElementById("inspect").textContent.startsWith(${JSON.stringify(path.basename(file))}) && document.getElementById("error").hidden`, 5000);
}
await ev('(__reads.length = 0, true)');
check('a model opened with the file picker replaces it (read whole once its header passed)', await pick(other)
  && (await ev('__reads')).includes(fs.statSync(other).size), (await ev('__reads')).join(', '));

// Files refused before they are read: one that is not a model (picked, and
// dropped) and one over the page's size limit (picked, and dropped), made
// in the page as Blobs. Each: the picker emptied (a dropped file empties it
// too: it named an older file), "NAME rejected: REASON; previous model
// kept", no read beyond the format's 20-byte frame, the same model (its
// header shown) and the same answer for the same drawing.
const limit = await ev('moe.maxModelBytes()');
// MiB to one decimal, rounded up (web/src/lib.rs head_error).
const mib = (n) => (Math.ceil(n / 1048576 * 10) / 10).toFixed(1);
const answerOf = async () => { const r = await ev(`(moe.drawImage(${JSON.stringify(Array.from(images[3]))}), ${shown})`); return `${r.cluster} ${r.bits.join(' ')}`; };
const answerBefore = await answerOf();
const inspectBefore = await ev('document.getElementById("inspect").textContent');
const otherHead = Array.from(fs.readFileSync(other).subarray(0, 20));
const refusals = [
  ['not-a-model.bin', 'pick', `new File([new TextEncoder().encode('PK\\x03\\x04 a zip, not a model '.repeat(40))], 'not-a-model.bin')`,
    'not a model file (bad magic bytes)'],
  ['photo.bin', 'drop', `new File([new Uint8Array(5000).fill(255)], 'photo.bin')`, 'not a model file (bad magic bytes)'],
  // A model's frame whose body length says the file's size: refused by size alone.
  ['huge.bin', 'pick', `(() => { const size = ${limit} + (1 << 20); const head = Uint8Array.from(${JSON.stringify(otherHead)});
    new DataView(head.buffer).setUint32(12, size - 20, true); return new File([head, new Uint8Array(size - 20)], 'huge.bin'); })()`,
  `${mib(limit + (1 << 20))} MiB is over this page's limit of ${limit >> 20} MiB`],
  ['huge-dropped.bin', 'drop', `new File([Uint8Array.from(${JSON.stringify(otherHead)}), new Uint8Array(${limit})], 'huge-dropped.bin')`,
    `${mib(limit + 20)} MiB is over this page's limit of ${limit >> 20} MiB`],
];
for (const [fileName, how, make, why] of refusals) {
  const r = await ev(`(async () => {
    __reads.length = 0;
    const file = ${make};
    const input = document.getElementById('file');
    const dt = new DataTransfer();
    dt.items.add(file);
    if ('${how}' === 'pick') {
      input.files = dt.files;
      input.dispatchEvent(new Event('change', { bubbles: true }));
    } else {
      const before = new DataTransfer();
      before.items.add(new File(['an older pick'], 'older.bin'));
      input.files = before.files; // the picker names an older file
      document.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    }
    for (let t = 0; t < 100 && !document.getElementById('error-text').textContent.startsWith(file.name); t++) await new Promise((r) => setTimeout(r, 50));
    return { error: document.getElementById('error-text').textContent, shown: !document.getElementById('error').hidden,
      picker: input.value, files: input.files.length, reads: [...__reads], size: file.size };
  })()`);
  const want = `${fileName} rejected: ${why}`;
  const answer = await answerOf();
  const inspectNow = await ev('document.getElementById("inspect").textContent');
  check(`${fileName} (${r.size.toLocaleString('en')} bytes, ${how === 'pick' ? 'picked' : 'dropped'}): refused from its first bytes and size, the picker emptied, "… rejected: …; previous model kept", the previous model still classifying`,
    r.shown && r.error.startsWith(want) && r.error.endsWith('; previous model kept') && r.picker === '' && r.files === 0
      && r.reads.length > 0 && r.reads.every((n) => n <= 20) && answer === answerBefore && inspectNow === inspectBefore,
    `${r.error}; picker ${JSON.stringify(r.picker)}; reads ${r.reads.join(', ')} of ${r.size} bytes`);
}
await ev('(document.getElementById("error-close").click(), true)');
check('the error banner closes', await ev('document.getElementById("error").hidden'));

// A model without a label map (--nolabels): its bars by cluster alone.
if (args.nolabels) {
  const ok = await pick(at(args.nolabels));
  if (ok) await barsCheck(path.basename(args.nolabels));
  else check(`${args.nolabels}: opened with the file picker`, false, await ev('document.getElementById("error-text").textContent'));
  const verdictNone = await ev(`(moe.drawImage(${JSON.stringify(Array.from(images[3]))}), document.getElementById('verdict').textContent)`);
  check(`${path.basename(args.nolabels)}: the answer says the model has no label map`, verdictNone.includes('no label map'), verdictNone.replace(/\n/g, ', '));
  // And it has no novelty section: the page says so, quietly, greys nothing.
  const none = await ev(shown);
  check(`${path.basename(args.nolabels)}: a model without a novelty section: "this model has no novelty score", quietly, nothing greyed`,
    none.known === 'none' && none.noveltyText === 'this model has no novelty score' && !none.greyed
      && (await ev('document.getElementById("novelty").classList.contains("quiet")')), `${none.known}: ${none.noveltyText}`);
}

// Further models (e.g. int8), opened with the file picker, checked as the first.
for (const extra of args.also.map(at)) {
  const name = path.basename(extra);
  if (!(await pick(extra))) {
    check(`${name}: opened with the file picker`, false, await ev('document.getElementById("error-text").textContent'));
    continue;
  }
  await mnistCheck(extra, name);
  await timeAndGenerate(extra, name);
}

// Two-level models (--twolevel: format version 3), opened with the file
// picker: the MNIST checks (style included), the header's styles, a row of
// samples per style of the explored expert, and generate.
for (const two of args.twolevel.map(at)) {
  const name = path.basename(two);
  if (!(await pick(two))) {
    check(`${name}: opened with the file picker`, false, await ev('document.getElementById("error-text").textContent'));
    continue;
  }
  // The harness's tree: each cluster's number of styles.
  const tree = execFileSync(at(args.harness), ['inspect', '--model', two]).toString();
  const styleCounts = [...tree.matchAll(/^cluster (\d+)[^:]*: weight [^,]+, (\d+) styles?$/gm)].map((m) => Number(m[2]));
  const text2 = await ev('document.getElementById("inspect").textContent');
  check(`${name}: header says format version 3 and each cluster's styles as harness inspect`,
    text2.includes('\nformat version 3,') && styleCounts.length > 0
      && styleCounts.every((n, c) => text2.includes(`\ncluster ${c}: ${n} styles`)), `${styleCounts.join(', ')}`);
  const rows2 = await mnistCheck(two, name);
  // A digit drawn: the rows show the gate's expert, one row per style.
  const pick2 = rows2.findIndex((r) => r.style > 0);
  const img = images[Math.max(pick2, 0)];
  const page = await ev(`(moe.drawImage(${JSON.stringify(Array.from(img))}), ${shown})`);
  const st = await ev(styleRows);
  const visible = st.rows.filter((r) => r.visible);
  const n = styleCounts[page.cluster];
  const inked = visible.every((r) => r.samples.length === 3 && r.samples.every((px) => px.some((v) => v > 0)));
  const distinct = new Set(visible.map((r) => r.samples.map((px) => px.join()).join('|'))).size === visible.length;
  const framed = st.rows.filter((r) => r.chosen).map((r) => r.style);
  check(`${name}: the drawn digit's expert gets a row of 3 samples per style (${n}), each with ink, each style's unlike the others', its style (${page.style}) framed`,
    !st.hidden && st.shown && st.cluster === page.cluster && visible.length === n && visible.every((r, s) => r.style === s)
      && inked && distinct && framed.length === 1 && framed[0] === page.style,
    JSON.stringify({ cluster: st.cluster, page: page.cluster, visible: visible.length, n, inked, distinct, framed, expert: st.expert }));
  if (args.screenshot) {
    const png = Buffer.from((await send('Page.captureScreenshot', { format: 'png' })).data, 'base64');
    fs.writeFileSync(at(args.screenshot.replace(/\.png$/, `-${path.basename(two, '.bin')}.png`)), png);
  }
  await ev(`moe.drawImage(${JSON.stringify(Array.from(images[N - 1]))})`);
  await timeAndGenerate(two, name);
}

// 5. Models of 8×8 images (--eight), opened with the file picker.
// A small seeded generator (after mulberry32), so that every run draws the same images.
function prng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) >>> 0;
    let t = Math.imul(seed ^ (seed >>> 15), seed | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
// 8×8 images the MNIST framing leaves unchanged, as MNIST's own are at 28×28:
// the ink's box is 6 pixels (20/28 of 8, rounded up) on its longer side and
// its centre of mass lies within 0.45 of pixel 4 both ways.
function framed8(count, random) {
  const out = [];
  while (out.length < count) {
    const tall = random() < 0.5;
    const other = 1 + Math.floor(random() * 6);
    const [bw, bh] = tall ? [other, 6] : [6, other];
    const box = Array.from({ length: bw * bh }, () => 1 + Math.floor(random() * 255));
    let [sum, sx, sy] = [0, 0, 0];
    box.forEach((v, i) => { sum += v; sx += (i % bw) * v; sy += Math.floor(i / bw) * v; });
    const [x0, y0] = [Math.round(4 - sx / sum), Math.round(4 - sy / sum)];
    if (Math.abs(4 - sx / sum - x0) > 0.45 || Math.abs(4 - sy / sum - y0) > 0.45) continue;
    if (x0 < 0 || y0 < 0 || x0 + bw > 8 || y0 + bh > 8) continue;
    const img = new Uint8Array(64);
    box.forEach((v, i) => { img[(y0 + Math.floor(i / bw)) * 8 + x0 + (i % bw)] = v; });
    out.push(img);
  }
  return out;
}
for (const eight of args.eight.map(at)) {
  const name = path.basename(eight);
  if (!(await pick(eight))) {
    check(`${name}: opened with the file picker`, false, await ev('document.getElementById("error-text").textContent'));
    continue;
  }
  const text8 = await ev('document.getElementById("inspect").textContent');
  const shape8 = await ev(`(() => {
    const p = document.getElementById('preview').getBoundingClientRect();
    const s = document.querySelector('.expert canvas');
    return { preview: [document.getElementById('preview').width, document.getElementById('preview').height, p.width, p.height],
      decoded: [document.getElementById('decoded').width, document.getElementById('decoded').height],
      sample: [s.width, s.height], caption: document.getElementById('shape').textContent };
  })()`);
  check(`${name}: header says 8×8; preview, decoded and sample canvases are 8×8, the preview shown 112 px wide`,
    text8.includes('image 8x8') && shape8.preview.join() === '8,8,112,112' && shape8.decoded.join() === '8,8'
      && shape8.sample.join() === '8,8' && shape8.caption === '8×8', JSON.stringify(shape8));
  await barsCheck(name);

  // 8×8 images the framing leaves unchanged: the page's bits are the
  // harness's on the images themselves.
  const random = prng(8);
  const still = framed8(40, random);
  const rows8 = [];
  for (const img of still) {
    rows8.push(await ev(`(moe.drawImage(${JSON.stringify(Array.from(img))}), ${shown})`));
    latentXs.add(rows8.at(-1).latentX);
  }
  const unchanged8 = rows8.filter((r, i) => r.shape.join() === '8,8' && r.preview.every((v, j) => v === still[i][j])).length;
  check(`${name}: 8×8 images framed like MNIST come out of the pad's framing unchanged`, unchanged8 === still.length, `${unchanged8}/${still.length}`);
  const onImages = harnessClassify(still, eight, 8, 8);
  const same8 = rows8.filter((r, i) => r.cluster === onImages[i].cluster && r.bits.join() === onImages[i].bits.join()).length;
  check(`${name}: ${still.length} 8×8 images: cluster and every probability's f32 bits as harness classify`, same8 === still.length, `${same8}/${still.length}`);
  // Arbitrary 8×8 images (the framing moves them): bits as the harness's on
  // the page's 8×8 previews.
  const loose = Array.from({ length: 20 }, () => Uint8Array.from({ length: 64 }, () => (random() < 0.6 ? 0 : Math.floor(random() * 256))));
  const looseRows = [];
  for (const img of loose) looseRows.push(await ev(`(moe.drawImage(${JSON.stringify(Array.from(img))}), ${shown})`));
  const onLoose = harnessClassify(looseRows.map((r) => r.preview), eight, 8, 8);
  const sameLoose = looseRows.filter((r, i) => r.preview.length === 64 && r.cluster === onLoose[i].cluster && r.bits.join() === onLoose[i].bits.join()).length;
  check(`${name}: 20 arbitrary 8×8 images: bits as harness classify on their 8×8 previews`, sameLoose === loose.length, `${sameLoose}/${loose.length}`);
  // A seven drawn with the pointer, framed into 8×8.
  await clear();
  for (const p of strokes['a seven']) await stroke(p);
  const seven = await ev(shown);
  const sevenInk = seven.preview.reduce((a, b) => a + b, 0);
  const onSeven = harnessClassify([seven.preview], eight, 8, 8)[0];
  check(`${name}: a seven drawn with the pointer: an 8×8 preview with ink, classified with the harness's bits`,
    seven.shape.join() === '8,8' && sevenInk > 0 && seven.cluster === onSeven.cluster && seven.bits.join() === onSeven.bits.join(),
    `${await ev('document.getElementById("verdict").textContent.replace(/\\n/g, ", ")')}; preview ink ${sevenInk}`);
  const before8 = await ev(decoded);
  await ev('(() => { const s = document.getElementById("z0"); s.value = 2.5; s.dispatchEvent(new Event("input")); return true; })()');
  check(`${name}: a latent slider redraws the 8×8 decoder output`, (await ev(decoded)) !== before8);
  if (args.screenshot) {
    const png = Buffer.from((await send('Page.captureScreenshot', { format: 'png' })).data, 'base64');
    fs.writeFileSync(at(args.screenshot.replace(/\.png$/, `-${path.basename(eight, '.bin')}.png`)), png);
  }
  await ev(`moe.drawImage(${JSON.stringify(Array.from(still.at(-1)))})`);
  await timeAndGenerate(eight, name, still.at(-1));
}
check('the answer\'s text never moves the layout (the latent section stays put)', latentXs.size === 1, [...latentXs].join(', '));

// 6. A browser without Web Serial (Firefox, Safari): the page reloaded
// without navigator.serial.
await send('Page.removeScriptToEvaluateOnNewDocument', { identifier: fakeSerialScript });
await send('Page.addScriptToEvaluateOnNewDocument', { source: 'delete Navigator.prototype.serial; delete navigator.serial;' });
await send('Page.navigate', { url });
const reloaded = await until('!("serial" in navigator) && window.moe && moe.ready && !!document.querySelector(".bar")');
const noSerial = await ev(boardState);
check('without navigator.serial the button is disabled and says why', reloaded && noSerial.disabled
  && noSerial.button === 'Connect a board' && noSerial.why === 'Web Serial needs Chrome or Edge', JSON.stringify([noSerial.button, noSerial.why]));
check('no exception escaped the page', exceptions.length === 0, exceptions.slice(0, 3).join(' | '));

// 7. Size.
const wasmBytes = fs.statSync(wasmPath).size;
// The page aimed at 150 KiB; the novelty score's parse, checks and
// arithmetic (about 3 KiB of engine code) and the protocol's novelty record
// took it past that, to 152 KiB (web/README.md).
check('web.wasm is at most 155 KiB', wasmBytes <= 155 * 1024, `${wasmBytes} bytes = ${(wasmBytes / 1024).toFixed(1)} KiB`);

if (args.screenshot) fs.copyFileSync(path.join(tmp, 'screenshot.png'), at(args.screenshot));
const f = (v) => (v === undefined ? '–' : v.toFixed(2)).padStart(12);
for (const { name, load, web, native, what } of timings) {
  console.log(`\n${name}: µs per call (best of 5 rounds of ${CALLS} calls; ${what}; load average ${load.toFixed(2)}):`);
  console.log(`${''.padEnd(26)}${'browser'.padStart(12)}${native.map((n) => `native ${n.kernels}`.padStart(22)).join('')}`);
  console.log(`${'classify'.padEnd(26)}${f(web.classify_us)}${native.map((n) => f(n.classify_us).padStart(22)).join('')}`);
  console.log(`${'generate'.padEnd(26)}${f(web.generate_us)}${native.map((n) => f(n.generate_us).padStart(22)).join('')}`);
  console.log(`${'preprocess 280×280 pad'.padEnd(26)}${f(web.preprocess_us)}`);
}
console.log(`(${os.cpus().length} cores; browser: Chromium ${(await send('Browser.getVersion', {}, null)).product}, wasm ${wasmBytes} bytes; whole test ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
