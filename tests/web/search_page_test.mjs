// The acceptance test of the search page that `omni-embed serve` serves at /: in a real Chromium (playwright-core),
// over an index of generated media (three images, speech, a 70 s sound cut into 30 s segments, a short video, a
// text), a person enters the API key, searches by text, by an image, by an audio clip, by a video and by a microphone
// recording (Chromium's fake device), uses "More like this" and the keyboard, and sees the right first hit each
// time, with thumbnails that load and players that start at the hit's second; an API error is shown as the server
// wrote it. The page must fit a phone's width.
// The server must refuse files outside the index and media requests without the key. Screenshots go to
// ARTIFACT_DIR (search-desktop.png, search-phone.png; failure.png when a check fails).
//   node search_page_test.mjs OMNI_EMBED_BINARY MODEL_DIR NODE_MODULES ARTIFACT_DIR
// Chromium: $OE_CHROMIUM, else /usr/bin/chromium. Needs ffmpeg and espeak-ng. $OE_WEB_ROOT, when set, is passed as
// --web-root (the page's files from that folder instead of the ones built into the binary: for work on the page).
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

const [cli, model, nodeModules, artifacts] = process.argv.slice(2);
if (!cli || !model || !nodeModules || !artifacts) {
  console.error('usage: node search_page_test.mjs OMNI_EMBED_BINARY MODEL_DIR NODE_MODULES ARTIFACT_DIR');
  process.exit(2);
}
const chromiumPath = process.env.OE_CHROMIUM || '/usr/bin/chromium';
if (!fs.existsSync(chromiumPath)) {
  console.error(`FAIL: no Chromium at ${chromiumPath}: install it (apt-get install chromium) or set OE_CHROMIUM`);
  process.exit(1);
}
const require = createRequire(path.join(path.resolve(nodeModules), 'noop.js'));
const { chromium } = require('playwright-core');
fs.mkdirSync(artifacts, { recursive: true });

let checks = 0;
function pass(what) {
  checks++;
  console.log(`ok ${checks} - ${what}`);
}

const tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'oe-web-')));
const media = path.join(tmp, 'media');     // indexed
const queries = path.join(tmp, 'queries'); // query files, not indexed
fs.mkdirSync(media);
fs.mkdirSync(queries);
const ffmpeg = (args) => execFileSync('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-y', ...args]);
const espeak = (text, file) => execFileSync('espeak-ng', ['-w', file, text]);

let browser = null;
let server = null;
let page = null;
const serverLog = [];
const pageErrors = [];

try {
  // The browser first: which video container it plays decides the test video's.
  browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ['--no-sandbox', '--autoplay-policy=no-user-gesture-required', '--use-fake-ui-for-media-stream',
           '--use-fake-device-for-media-stream'],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  page = await context.newPage();
  page.setDefaultTimeout(60_000);
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  const h264 = await page.evaluate(() => document.createElement('video').canPlayType('video/mp4; codecs="avc1.64000d, mp4a.40.2"'));

  // The media: distinct images, speech, a 70 s sound (speech, a tone, noise: three 30 s segments), a video, a text.
  for (const [name, source] of [['testcard.png', 'testsrc2'], ['fractal.png', 'mandelbrot'], ['bars.png', 'smptebars']])
    ffmpeg(['-f', 'lavfi', '-i', `${source}=size=128x96`, '-frames:v', '1', path.join(media, name)]);
  espeak('Good morning. The train to the coast leaves from platform four at nine.', path.join(media, 'speech.wav'));
  const narration = path.join(tmp, 'narration.wav');
  espeak('Welcome to the harbour tour. On the left you can see the old lighthouse and the fishing boats.', narration);
  ffmpeg(['-i', narration, '-f', 'lavfi', '-i', 'sine=frequency=660:sample_rate=16000:duration=30',
          '-f', 'lavfi', '-i', 'anoisesrc=color=pink:sample_rate=16000:amplitude=0.3:duration=10', '-filter_complex',
          '[0:a]aresample=16000,aformat=sample_fmts=s16:channel_layouts=mono,apad=whole_dur=30[a];' +
          '[1:a]aformat=sample_fmts=s16:channel_layouts=mono[b];[2:a]aformat=sample_fmts=s16:channel_layouts=mono[c];' +
          '[a][b][c]concat=n=3:v=0:a=1[out]', '-map', '[out]', '-c:a', 'pcm_s16le', path.join(media, 'tour.wav')]);
  const videoName = h264 === 'probably' ? 'clip.mp4' : 'clip.webm';
  const videoCodecs = videoName.endsWith('.mp4')
    ? ['-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-movflags', '+faststart']
    : ['-c:v', 'libvpx', '-b:v', '500k', '-c:a', 'libvorbis'];
  ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=size=160x96:rate=10', '-f', 'lavfi', '-i', 'sine=frequency=500', '-t', '3',
          ...videoCodecs, path.join(media, videoName)]);
  // A video no browser plays (MPEG-4 part 2 and PCM in AVI): its player falls back to the server's WebM preview.
  ffmpeg(['-f', 'lavfi', '-i', 'rgbtestsrc=size=160x96:rate=10', '-f', 'lavfi', '-i', 'sine=frequency=300', '-t', '3',
          '-c:v', 'mpeg4', '-c:a', 'pcm_s16le', path.join(media, 'old.avi')]);
  const sentence = 'The lighthouse keeper counted seventeen grey herons on the frozen estuary at dawn.';
  fs.writeFileSync(path.join(media, 'notes.txt'), `${sentence}\n`);
  const clip = path.join(queries, 'tour-30-60.wav');  // the tour's second segment, as a query
  ffmpeg(['-ss', '30', '-t', '30', '-i', path.join(media, 'tour.wav'), '-c:a', 'pcm_s16le', clip]);

  // The index, and the server over it with an API key.
  const settings = ['--model', model, '--dtype', 'fp32', '--video-min-pixels', '3136', '--video-max-pixels', '6272'];
  const idx = path.join(tmp, 'idx');
  try {
    execFileSync(cli, ['index', media, '--index', idx, ...settings], { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    throw new Error(`omni-embed index failed: ${e.stderr?.toString() ?? e.message}`);
  }
  const key = 'sk-web-test-key';
  const keyFile = path.join(tmp, 'key');
  fs.writeFileSync(keyFile, `${key}\n`);
  const webRoot = process.env.OE_WEB_ROOT ? ['--web-root', process.env.OE_WEB_ROOT] : [];
  server = spawn(cli, ['serve', ...settings, '--index', idx, '--port', '0', '--api-key-file', keyFile,
                        '--served-model-name', 'omni-embed-tiny-test', ...webRoot],
                 { stdio: ['ignore', 'ignore', 'pipe'] });
  const lines = readline.createInterface({ input: server.stderr });
  let port = 0;
  for await (const line of lines) {
    serverLog.push(line);
    let event = {};
    try { event = JSON.parse(line); } catch { continue; }
    if (event.event === 'listening') port = event.port;
    if (event.event === 'ready') break;
  }
  lines.on('line', (line) => { serverLog.push(line); if (serverLog.length > 200) serverLog.shift(); });
  assert.ok(port > 0, 'the server printed its port and became ready');
  const base = `http://127.0.0.1:${port}`;

  // Runs `action`, waits until the page has finished one more search, and returns the hits' data attributes.
  async function searched(action, what) {
    const before = Number(await page.getAttribute('#results', 'data-searches'));
    await action();
    await page.waitForFunction((n) => Number(document.getElementById('results').dataset.searches) > n, before);
    const error = (await page.textContent('#error')).trim();
    assert.equal(error, '', `${what}: the page shows an error`);
    assert.match(await page.textContent('#status'), /^\d+ hits? in \d+ ms$/, `${what}: the status line`);
    const hits = await page.$$eval('#results > li.hit', (lis) => lis.map((li) => ({ ...li.dataset })));
    assert.ok(hits.length > 0, `${what}: no hits`);
    hits.forEach((h, i) => assert.equal(h.rank, String(i + 1), `${what}: hit ${i} has rank ${h.rank}`));
    return hits;
  }
  // The first hit's player, once it has its metadata: where it stands and whether it failed.
  async function firstPlayer(tag) {
    const selector = `#results > li.hit:first-child ${tag}.player`;
    await page.waitForFunction((s) => { const m = document.querySelector(s); return m && (m.readyState >= 1 || m.error); },
                               selector);
    return page.$eval(selector, (m) => ({ time: m.currentTime, error: m.error && `${m.error.code} ${m.error.message}`,
                                          src: m.getAttribute('src') }));
  }
  const chooseFile = (file) => searched(async () => {
    await page.fill('#q', '');
    await page.setInputFiles('#file', file);
  }, path.basename(file));

  // The key: asked for on the first 401, then kept (localStorage and the cookie media requests carry).
  await page.goto(`${base}/`);
  await page.waitForSelector('#key-form', { state: 'visible' });
  await page.fill('#key', key);
  await page.press('#key', 'Enter');
  await page.waitForSelector('#key-form', { state: 'hidden' });
  await page.waitForFunction(() => document.querySelectorAll('#modality option').length > 1);
  const options = await page.$$eval('#modality option', (os) => os.map((o) => o.value));
  assert.deepEqual(options, ['', 'text', 'image', 'audio', 'video'], 'the modality filter offers the index\'s modalities');
  assert.equal(await page.evaluate(() => localStorage.getItem('omni-embed-api-key')), key);
  const cookie = (await context.cookies(base)).find((c) => c.name === 'omni_embed_key');
  assert.equal(cookie?.value, key, 'the key cookie');
  assert.equal(await page.inputValue('#k'), '10');
  pass('the key form appears on 401; the key is kept and the filters come from /v1/index');

  // a. Text: the text file first, its passage shown.
  {
    const hits = await searched(async () => {
      await page.fill('#q', sentence);
      await page.click('#search-button');
    }, 'text search');
    assert.equal(path.basename(hits[0].path), 'notes.txt', `first hit ${hits[0].path}`);
    assert.equal(hits[0].modality, 'text');
    const passage = await page.textContent('#results > li.hit:first-child .preview');
    assert.ok(passage.includes('seventeen grey herons'), `the passage shown: ${passage}`);
    pass('text search: notes.txt first, its passage shown');
  }

  // b. An image: itself first, its thumbnail loaded (through the cookie); the desktop screenshot.
  {
    const hits = await chooseFile(path.join(media, 'fractal.png'));
    assert.equal(path.basename(hits[0].path), 'fractal.png', `first hit ${hits[0].path}`);
    assert.equal(hits[0].modality, 'image');
    const thumb = '#results > li.hit:first-child img.thumb';
    await page.waitForFunction((s) => document.querySelector(s)?.complete, thumb);
    const width = await page.$eval(thumb, (img) => img.naturalWidth);
    assert.ok(width > 0, `the thumbnail ${await page.getAttribute(thumb, 'src')} did not load`);
    const modalities = new Set(hits.map((h) => h.modality));
    assert.ok(modalities.size >= 3, `k=10 over all modalities shows several: ${[...modalities]}`);
    // Wait for the thumbnails and players on screen (the ones below the fold load lazily, when scrolled to).
    await page.waitForFunction(() => [...document.querySelectorAll('#results img, #results .player')]
      .every((m) => (m.tagName === 'IMG' ? m.complete : m.readyState >= 1 || m.error)
                    || m.getBoundingClientRect().top > window.innerHeight));
    await page.screenshot({ path: path.join(artifacts, 'search-desktop.png') });
    pass(`image search: fractal.png first, thumbnail ${width} px wide; ${hits.length} hits of ${modalities.size} modalities`);
  }

  // c. An audio clip (the tour's 30-60 s): that segment first, its player starting at 0:30.
  {
    const hits = await chooseFile(clip);
    assert.equal(path.basename(hits[0].path), 'tour.wav', `first hit ${hits[0].path}`);
    assert.equal(hits[0].modality, 'audio');
    assert.equal(hits[0].start, '30', 'the segment starts at 30 s');
    assert.equal(hits[0].end, '60', 'the segment ends at 60 s');
    const range = await page.textContent('#results > li.hit:first-child .range');
    assert.equal(range, '0:30–1:00');
    const player = await firstPlayer('audio');
    assert.equal(player.error, null, `the audio player failed: ${player.error}`);
    assert.ok(Math.abs(player.time - 30) < 1, `the audio player stands at ${player.time} s, not 30`);
    pass(`audio search: tour.wav [30, 60] first, shown as ${range}, player at ${player.time.toFixed(1)} s`);
  }

  // d. The video: itself first, its player playable and at the hit's start.
  let videoHits;
  {
    videoHits = await chooseFile(path.join(media, videoName));
    const first = videoHits[0];
    assert.equal(path.basename(first.path), videoName, `first hit ${first.path}`);
    assert.equal(first.modality, 'video');
    const start = Number(first.start ?? 0);
    const player = await firstPlayer('video');
    assert.equal(player.error, null, `the video player failed: ${player.error}`);
    assert.ok(Math.abs(player.time - start) < 1, `the video player stands at ${player.time} s, not ${start}`);
    pass(`video search: ${videoName} first, player without error at ${player.time.toFixed(1)} s`);
  }

  // e. More like this (the second hit): that same item first.
  {
    const target = videoHits[1] ?? videoHits[0];
    const hits = await searched(() => page.click(`#results > li.hit[data-rank="${target.rank}"] button.like`), 'more like this');
    assert.equal(hits[0].item, target.item, `more like item ${target.item} (${target.path}): first hits ${JSON.stringify(hits.slice(0, 3))}`);
    pass(`more like this: item ${target.item} (${path.basename(target.path)}, ${target.modality}) first`);
  }

  // e2. A video the browser cannot play: itself first, its player on the server's preview, playable, at its start.
  {
    const hits = await chooseFile(path.join(media, 'old.avi'));
    assert.equal(path.basename(hits[0].path), 'old.avi', `first hit ${hits[0].path}`);
    const selector = '#results > li.hit:first-child video.player';
    await page.waitForFunction((s) => { const m = document.querySelector(s);
                                        return m && m.dataset.preview === '1' && (m.readyState >= 1 || m.error); },
                               selector);
    const player = await page.$eval(selector, (m) => ({ time: m.currentTime, duration: m.duration,
                                                        error: m.error && `${m.error.code} ${m.error.message}` }));
    assert.equal(player.error, null, `the preview failed: ${player.error}`);
    assert.ok(player.time < 1 && player.duration > 2 && player.duration < 4,
              `the preview stands at ${player.time} s of ${player.duration} s (the 3 s video, with its duration)`);
    pass(`a video the browser cannot play (AVI): the player fell back to the server's preview (${player.duration.toFixed(1)} s)`);
  }

  // f. A phone: one column, no horizontal scroll.
  {
    await page.setViewportSize({ width: 375, height: 740 });
    await page.waitForFunction(() => document.documentElement.clientWidth === 375);
    const layout = await page.evaluate(() => ({
      scrollWidth: document.documentElement.scrollWidth,
      lefts: [...document.querySelectorAll('#results > li.hit')].map((li) => Math.round(li.getBoundingClientRect().left)),
    }));
    assert.ok(layout.scrollWidth <= 375, `the page is ${layout.scrollWidth} px wide on a 375 px screen`);
    assert.equal(new Set(layout.lefts).size, 1, `one column on a phone: hits at x = ${layout.lefts}`);
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: path.join(artifacts, 'search-phone.png') });
    await page.setViewportSize({ width: 1280, height: 860 });
    pass(`phone (375 px): one column, scrollWidth ${layout.scrollWidth}`);
  }

  // g. The server refuses what is not in the index, and media without the key.
  {
    const auth = { Authorization: `Bearer ${key}` };
    for (const url of ['/v1/thumbnail?path=/etc/passwd', '/v1/media?path=/etc/hostname', '/v1/thumbnail?item=999999',
                       '/v1/media?item=999999']) {
      const r = await fetch(base + url, { headers: auth });
      const body = await r.text();
      assert.ok(r.status === 403 || r.status === 404, `GET ${url} with the key: HTTP ${r.status} (want 403 or 404): ${body.slice(0, 200)}`);
      assert.ok(!body.includes('root:'), `GET ${url} answered a system file`);
    }
    for (const url of ['/v1/media?item=../../etc/passwd', '/v1/media?item=1&path=/etc/passwd', '/v1/thumbnail?item=-1']) {
      const r = await fetch(base + url, { headers: auth });
      const body = await r.text();
      assert.ok(!body.includes('root:'), `GET ${url} answered a system file (HTTP ${r.status})`);
    }
    // Static files: no way out of the page's folder, even spelled with encoded dots.
    for (const raw of ['/../../../../etc/passwd', '/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd', '/..%2f..%2f..%2f..%2fetc%2fpasswd']) {
      const r = await rawGet(port, raw);
      assert.ok(!r.body.includes('root:'), `GET ${raw} answered /etc/passwd (HTTP ${r.status})`);
    }
    const image = (await page.$$eval('#results > li.hit', (lis) => lis.map((li) => ({ ...li.dataset }))))
      .find((h) => h.modality === 'image') ?? { item: '1' };
    const noKey = await fetch(`${base}/v1/thumbnail?item=${image.item}`);
    assert.equal(noKey.status, 401, `a thumbnail without the key: HTTP ${noKey.status}`);
    const wrongCookie = await fetch(`${base}/v1/thumbnail?item=${image.item}`, { headers: { Cookie: 'omni_embed_key=sk-wrong' } });
    assert.equal(wrongCookie.status, 401, `a thumbnail with a wrong key cookie: HTTP ${wrongCookie.status}`);
    const withCookie = await fetch(`${base}/v1/thumbnail?item=${image.item}`,
                                   { headers: { Cookie: `omni_embed_key=${encodeURIComponent(key)}` } });
    assert.equal(withCookie.status, 200, `a thumbnail with the key cookie: HTTP ${withCookie.status}`);
    assert.equal(withCookie.headers.get('content-type'), 'image/jpeg');
    const ranged = await fetch(`${base}/v1/media?item=${image.item}`, { headers: { ...auth, Range: 'bytes=0-7' } });
    const head = Buffer.from(await ranged.arrayBuffer());
    assert.equal(ranged.status, 206, `a Range request of /v1/media: HTTP ${ranged.status}`);
    assert.deepEqual([...head], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'the first 8 bytes of the PNG');
    pass('files outside the index refused (403/404); media needs the key (header or cookie); Range works');
  }

  // h. The keyboard alone: focus the text box, type, Enter.
  {
    await page.click('#clear-file');
    const hits = await searched(async () => {
      await page.focus('#q');
      await page.fill('#q', '');
      await page.keyboard.type('a harbour tour past the lighthouse');
      await page.keyboard.press('Enter');
    }, 'keyboard search');
    pass(`keyboard: typed query + Enter gave ${hits.length} hits`);
  }

  // i. The microphone (Chromium's fake device): record, stop, and the recording (audio/webm) is searched.
  {
    assert.equal(await page.isVisible('#record'), true, 'the record button shows where MediaRecorder exists');
    await page.fill('#q', '');
    const hits = await searched(async () => {
      await page.click('#record');
      await page.waitForFunction(() => document.getElementById('record').getAttribute('aria-pressed') === 'true');
      await page.waitForTimeout(1500);
      await page.click('#record');
    }, 'microphone search');
    pass(`microphone: a 1.5 s recording searched as audio/webm, ${hits.length} hits`);
  }

  // j. An error of the API is shown plainly: a file named .png that is not an image is the server's 400, whose
  // message the page shows as it is, and the page keeps working.
  {
    const bad = path.join(queries, 'broken.png');
    fs.writeFileSync(bad, 'this is not a picture');
    const before = Number(await page.getAttribute('#results', 'data-searches'));
    await page.fill('#q', '');
    await page.setInputFiles('#file', bad);
    await page.waitForFunction((n) => Number(document.getElementById('results').dataset.searches) > n, before);
    const error = (await page.textContent('#error')).trim();
    assert.match(error, /400/, `the error names the HTTP status: "${error}"`);
    assert.match(error, /query/, `the error is the server's message naming the field: "${error}"`);
    await page.click('#clear-file');
    const hits = await searched(async () => {
      await page.fill('#q', 'lighthouse');
      await page.keyboard.press('Enter');
    }, 'search after an error');
    pass(`an API error is shown as it is ("${error.slice(0, 60)}..."), and the next search works (${hits.length} hits)`);
  }

  assert.deepEqual(pageErrors, [], 'uncaught errors in the page');
  pass('no uncaught script errors');
  console.log(`ok: ${checks} checks`);
} catch (e) {
  if (page) await page.screenshot({ path: path.join(artifacts, 'failure.png'), fullPage: true }).catch(() => {});
  console.error(`FAIL after ${checks} checks: ${e.stack ?? e}`);
  if (pageErrors.length) console.error(`page errors:\n${pageErrors.join('\n')}`);
  if (serverLog.length) console.error(`server log (last lines):\n${serverLog.slice(-20).join('\n')}`);
  process.exitCode = 1;
} finally {
  await browser?.close().catch(() => {});
  server?.kill('SIGTERM');
  fs.rmSync(tmp, { recursive: true, force: true });
}

// A GET with the path sent as written (fetch would normalize the dots away).
function rawGet(port, rawPath) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: rawPath, method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('error', reject);
    req.end();
  });
}
