// The acceptance test of `omni-embed serve`: the official openai npm client, unchanged, gets the same vectors as
// `omni-embed embed` (cosine >= 0.99999, fp32) for a string, a list, and multimodal content parts (image, audio,
// video, sent as data: URIs or base64 and named under the media root), in float and base64 encodings; a wrong API
// key is the client's AuthenticationError.
//   node openai_client_test.mjs OMNI_EMBED_BINARY MODEL_DIR NODE_MODULES
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

const [cli, model, nodeModules] = process.argv.slice(2);
const require = createRequire(path.join(path.resolve(nodeModules), 'noop.js'));
const OpenAI = require('openai');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'oe-serve-openai-'));
const root = path.join(tmp, 'media');
fs.mkdirSync(root);
const ffmpeg = (args) => execFileSync('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-y', ...args]);
ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=size=96x64', '-frames:v', '1', path.join(root, 'img.png')]);
ffmpeg(['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=16000', '-t', '1.5', path.join(root, 'tone.wav')]);
ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=size=160x96:rate=10', '-f', 'lavfi', '-i', 'sine=frequency=500', '-t', '2',
        '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-c:a', 'aac', path.join(root, 'clip.mp4')]);
const settings = ['--dtype', 'fp32', '--video-min-pixels', '3136', '--video-max-pixels', '6272'];

// The vector `omni-embed embed` gives for these arguments.
function reference(args) {
  const out = execFileSync(cli, ['embed', '--model', model, ...settings, ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
  return out.toString().trim().split('\n').map((l) => JSON.parse(l).embedding);
}

function cosine(a, b) {
  assert.equal(a.length, b.length);
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; ++i) { ab += a[i] * b[i]; aa += a[i] * a[i]; bb += b[i] * b[i]; }
  return ab / Math.sqrt(aa * bb);
}

function expectClose(got, want, what) {
  const c = cosine(Array.from(got), want);
  assert.ok(c >= 0.99999, `${what}: cosine ${c}`);
}

function fromBase64(s) {
  const buf = Buffer.from(s, 'base64');
  return new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
}

const dataUri = (file, type) => `data:${type};base64,${fs.readFileSync(path.join(root, file)).toString('base64')}`;

async function startServer(extra) {
  const server = spawn(cli, ['serve', '--model', model, '--port', '0', '--media-root', root, ...settings, ...extra],
                       { stdio: ['ignore', 'ignore', 'pipe'] });
  const lines = readline.createInterface({ input: server.stderr });
  let port = 0;
  for await (const line of lines) {
    let event = {};
    try { event = JSON.parse(line); } catch { continue; }
    if (event.event === 'listening') port = event.port;
    if (event.event === 'ready') break;
  }
  lines.on('line', () => {});  // keep draining the log
  assert.ok(port > 0, 'the server printed its port');
  return { server, port };
}

const keyFile = path.join(tmp, 'key');
fs.writeFileSync(keyFile, 'sk-test-key\n');
const { server, port } = await startServer(['--api-key-file', keyFile]);
try {
  const client = new OpenAI({ apiKey: 'sk-test-key', baseURL: `http://127.0.0.1:${port}/v1`, maxRetries: 0 });
  const name = model;
  let checks = 0;

  // A string: the client's default (it asks for base64 and decodes it), and floats.
  const [hello] = reference(['--document', '--text', 'hello world']);
  for (const encoding_format of [undefined, 'float']) {
    const r = await client.embeddings.create({ model: name, input: 'hello world', encoding_format });
    assert.equal(r.data.length, 1);
    expectClose(r.data[0].embedding, hello, `string (${encoding_format ?? 'default'})`);
    assert.ok(r.usage.prompt_tokens > 0);
    checks++;
  }
  // base64 asked for explicitly: the client hands the string over as it came.
  {
    const r = await client.embeddings.create({ model: name, input: 'hello world', encoding_format: 'base64' });
    assert.equal(typeof r.data[0].embedding, 'string');
    expectClose(fromBase64(r.data[0].embedding), hello, 'string (base64)');
    checks++;
  }
  // A list, as documents and as queries, in order.
  {
    const texts = ['first text', 'a second, longer text', 'third'];
    const docs = reference(texts.flatMap((t) => ['--document', '--text', t]).slice(1));
    const r = await client.embeddings.create({ model: name, input: texts, encoding_format: 'float' });
    assert.deepEqual(r.data.map((d) => d.index), [0, 1, 2]);
    r.data.forEach((d, i) => expectClose(d.embedding, docs[i], `list item ${i}`));
    const queries = reference(texts.flatMap((t) => ['--query', t]));
    const q = await client.embeddings.create({ model: name, input: texts, input_type: 'query' });
    q.data.forEach((d, i) => expectClose(d.embedding, queries[i], `query ${i}`));
    checks += 2;
  }
  // Multimodal parts, inline and from the media root, float and base64.
  const cases = [
    ['image (data: URI)', [{ type: 'image_url', image_url: { url: dataUri('img.png', 'image/png') } }], ['--image', 'img.png']],
    ['image (media root)', [{ type: 'image_url', image_url: { url: 'img.png' } }], ['--image', 'img.png']],
    ['text and image', [{ type: 'text', text: 'a test card' }, { type: 'image_url', image_url: { url: 'img.png' } }],
     ['--document', '--text', 'a test card', '--image', 'img.png']],
    ['audio (input_audio base64)',
     [{ type: 'input_audio', input_audio: { data: fs.readFileSync(path.join(root, 'tone.wav')).toString('base64'), format: 'wav' } }],
     ['--audio', 'tone.wav']],
    ['audio (media root)', [{ type: 'audio_url', audio_url: { url: 'tone.wav' } }], ['--audio', 'tone.wav']],
    ['video (data: URI)', [{ type: 'video_url', video_url: { url: dataUri('clip.mp4', 'video/mp4') } }], ['--video', 'clip.mp4']],
    ['video (media root)', [{ type: 'video_url', video_url: { url: 'file:clip.mp4' } }], ['--video', 'clip.mp4']],
  ];
  for (const [what, content, args] of cases) {
    const [want] = reference(args.map((a) => (/\.(png|wav|mp4)$/.test(a) ? path.join(root, a) : a)));
    for (const encoding_format of ['float', 'base64']) {
      const r = await client.embeddings.create({ model: name, input: [{ content }], encoding_format });
      const got = encoding_format === 'base64' ? fromBase64(r.data[0].embedding) : r.data[0].embedding;
      expectClose(got, want, `${what} (${encoding_format})`);
      checks++;
    }
  }
  // Late fusion per request: the frames and the sound of a video, as `embed --fusion late` gives them.
  {
    const out = execFileSync(cli, ['embed', '--model', model, ...settings, '--fusion', 'late', '--video', path.join(root, 'clip.mp4')],
                             { stdio: ['ignore', 'pipe', 'ignore'] });
    const want = JSON.parse(out.toString());
    const r = await client.embeddings.create({ model: name, input: [{ content: [{ type: 'video_url', video_url: { url: 'clip.mp4' } }] }],
                                               encoding_format: 'float', fusion: 'late' });
    expectClose(r.data[0].embedding, want.embedding, 'late fusion frames');
    expectClose(r.data[0].audio_embedding, want.audio_embedding, 'late fusion sound');
    checks++;
  }
  // The models route, and errors as the client's exceptions.
  const models = await client.models.list();
  assert.equal(models.data[0].id, name);
  const wrong = new OpenAI({ apiKey: 'sk-wrong', baseURL: `http://127.0.0.1:${port}/v1`, maxRetries: 0 });
  await assert.rejects(wrong.embeddings.create({ model: name, input: 'x' }), (e) => e.status === 401 && e instanceof OpenAI.AuthenticationError);
  await assert.rejects(client.embeddings.create({ model: name, input: 'x', dimensions: 3 }),
                       (e) => e.status === 400 && /dimensions/.test(e.message));
  console.log(`ok: ${checks} vector checks against omni-embed embed`);
} finally {
  server.kill('SIGTERM');
  fs.rmSync(tmp, { recursive: true, force: true });
}
