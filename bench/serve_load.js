#!/usr/bin/env node
// Load test of `omni-embed serve` on loopback: N concurrent clients mixing short texts and images for T seconds,
// run twice in one invocation against servers it starts itself, one-at-a-time (--max-batch-tokens 1: every item
// its own forward pass) and batched (the server's default budget), optionally with one more client sending a long
// video over and over. Every response is checked against its request: status 200, one vector per input in input
// order, each equal (cosine >= 0.99999) to the vector the same server gave for that input alone before the load;
// request ids must be unique (nothing lost or answered twice). Prints one JSON line per run: throughput, p50/p99
// latency per kind, errors, and the server's peak RSS.
//
//   node bench/serve_load.js --binary build/tools/cli/omni-embed --model DIR [--clients 64] [--seconds 60]
//        [--image a.png ...] [--video long.mp4] [--image-share 0.3] [--modes one,batched] [-- extra serve flags]
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const readline = require('node:readline');

function parseArgs(argv) {
  const a = { clients: 64, seconds: 60, images: [], video: '', imageShare: 0.3, modes: ['one', 'batched'], extra: [] };
  for (let i = 0; i < argv.length; ++i) {
    const k = argv[i];
    if (k === '--') { a.extra = argv.slice(i + 1); break; }
    const v = argv[++i];
    if (k === '--binary') a.binary = v;
    else if (k === '--model') a.model = v;
    else if (k === '--clients') a.clients = Number(v);
    else if (k === '--seconds') a.seconds = Number(v);
    else if (k === '--image') a.images.push(v);
    else if (k === '--video') a.video = v;
    else if (k === '--image-share') a.imageShare = Number(v);
    else if (k === '--modes') a.modes = v.split(',');
    else throw new Error(`unknown argument ${k}`);
  }
  if (!a.binary || !a.model) throw new Error('--binary and --model are required');
  return a;
}

async function startServer(args, batchTokens) {
  const flags = ['serve', '--model', args.model, '--port', '0', '--max-queue', '4096', '--max-connections', '4096',
                 '--max-body-mb', '256', ...(batchTokens ? ['--max-batch-tokens', String(batchTokens)] : []), ...args.extra];
  const proc = spawn(args.binary, flags, { stdio: ['ignore', 'ignore', 'pipe'] });
  const lines = readline.createInterface({ input: proc.stderr });
  let port = 0;
  for await (const line of lines) {
    if (!line.startsWith('{')) continue;
    const e = JSON.parse(line);
    if (e.event === 'listening') port = e.port;
    if (e.event === 'ready') break;
  }
  lines.on('line', () => {});
  return { proc, url: `http://127.0.0.1:${port}` };
}

function peakRssMiB(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmHWM:\s+(\d+) kB/.exec(status);
  return m ? Math.round(Number(m[1]) / 1024) : -1;
}

async function embed(url, input) {
  const t0 = performance.now();
  const r = await fetch(`${url}/v1/embeddings`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ input, encoding_format: 'base64' }),
  });
  const text = await r.text();
  return { status: r.status, id: r.headers.get('x-request-id'), body: text, ms: performance.now() - t0 };
}

function vectors(body) {
  return JSON.parse(body).data.map((d) => {
    const b = Buffer.from(d.embedding, 'base64');
    return { index: d.index, v: new Float32Array(b.buffer, b.byteOffset, b.length / 4) };
  });
}

function cosine(a, b) {
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; ++i) { ab += a[i] * b[i]; aa += a[i] * a[i]; bb += b[i] * b[i]; }
  return ab / Math.sqrt(aa * bb);
}

function percentile(xs, p) {
  if (xs.length === 0) return null;
  const s = [...xs].sort((x, y) => x - y);
  return Math.round(s[Math.min(s.length - 1, Math.floor(p / 100 * s.length))] * 10) / 10;
}

// The inputs of the load: 256 short texts and the images, each with the vector the server gives it alone.
function inputs(args) {
  const texts = [];
  for (let i = 0; i < 256; ++i) texts.push(`short query number ${i} about ${['cats', 'rockets', 'bread', 'rivers'][i % 4]}`);
  const images = args.images.map((p) => ({ content: [{ type: 'image_url', image_url: {
    url: `data:image/png;base64,${fs.readFileSync(p).toString('base64')}` } }] }));
  const video = args.video ? { content: [{ type: 'video_url', video_url: {
    url: `data:video/mp4;base64,${fs.readFileSync(args.video).toString('base64')}` } }] } : null;
  return { texts, images, video };
}

async function references(url, set) {
  const ref = { texts: [], images: [] };
  for (const t of set.texts) ref.texts.push(vectors((await embed(url, t)).body)[0].v);
  for (const im of set.images) ref.images.push(vectors((await embed(url, [im])).body)[0].v);
  return ref;
}

async function run(args, mode, set) {
  const { proc, url } = await startServer(args, mode === 'one' ? 1 : 0);
  const ref = await references(url, set);
  const stats = { text: [], image: [], video: [] };
  let errors = 0, sent = 0, answered = 0, mismatches = 0, items = 0;
  const ids = new Set();
  let duplicates = 0;
  const until = performance.now() + args.seconds * 1000;
  const check = (r, expect) => {
    answered++;
    if (r.status !== 200) { errors++; return false; }
    if (ids.has(r.id)) duplicates++;
    ids.add(r.id);
    const got = vectors(r.body);
    if (got.length !== expect.length) { mismatches++; return false; }
    got.forEach((g, i) => { if (g.index !== i || cosine(g.v, expect[i]) < 0.99999) mismatches++; });
    items += got.length;
    return true;
  };
  let rng = 12345;
  const rand = () => ((rng = (rng * 1103515245 + 12345) % 2147483648) / 2147483648);
  async function client() {
    while (performance.now() < until) {
      const image = set.images.length > 0 && rand() < args.imageShare;
      sent++;
      if (image) {
        const k = Math.floor(rand() * set.images.length);
        const r = await embed(url, [set.images[k]]);
        if (check(r, [ref.images[k]])) stats.image.push(r.ms);
      } else {
        const k = Math.floor(rand() * set.texts.length);
        const r = await embed(url, set.texts[k]);
        if (check(r, [ref.texts[k]])) stats.text.push(r.ms);
      }
    }
  }
  async function videoClient() {
    while (performance.now() < until) {
      sent++;
      const r = await embed(url, [set.video]);
      answered++;
      if (r.status !== 200) errors++; else stats.video.push(r.ms);
    }
  }
  const t0 = performance.now();
  const clients = [];
  for (let i = 0; i < args.clients; ++i) clients.push(client());
  if (set.video) clients.push(videoClient());
  await Promise.all(clients);
  const seconds = (performance.now() - t0) / 1000;
  const rss = peakRssMiB(proc.pid);
  proc.kill('SIGTERM');
  await new Promise((resolve) => proc.on('exit', resolve));
  const summary = (xs) => ({ n: xs.length, p50_ms: percentile(xs, 50), p99_ms: percentile(xs, 99) });
  return {
    mode, clients: args.clients, seconds: Math.round(seconds * 10) / 10, video_client: !!set.video,
    requests_per_s: Math.round(answered / seconds * 10) / 10, items_per_s: Math.round(items / seconds * 10) / 10,
    sent, answered, errors, mismatches, duplicates, lost: sent - answered,
    text: summary(stats.text), image: summary(stats.image), video: summary(stats.video), server_peak_rss_mib: rss,
  };
}

(async () => {
  const args = parseArgs(process.argv.slice(2));
  const set = inputs(args);
  let failed = false;
  for (const mode of args.modes) {
    const r = await run(args, mode, set);
    console.log(JSON.stringify(r));
    failed ||= r.errors > 0 || r.mismatches > 0 || r.duplicates > 0 || r.lost > 0;
  }
  process.exit(failed ? 1 : 0);
})().catch((e) => { console.error(`serve_load: ${e.stack || e}`); process.exit(2); });
