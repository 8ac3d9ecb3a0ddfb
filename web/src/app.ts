// The search page of `omni-embed serve` (served at / with index.html and style.css; compiled to one app.js by tsc).
//
// A person searches the server's index by typing, by choosing or dropping an image, audio or video file, or by
// recording from the microphone, and sees the hits as a grid: image thumbnails, video and audio players that start
// at the hit's time range, text passages. Every hit has a "More like this" button.
//
// The API it calls, all on this origin:
//   GET  /v1/index                       what the index holds (model, item counts per modality, late fusion)
//   POST /v1/search                      {"query": "text" | [content part, ...]  or  "like": ITEM,
//                                         "k", "modality": [...], "late_weight"}
//   GET  /v1/thumbnail?item=ID[&t=S]     a JPEG of an image, or of a video's frame at S seconds
//   GET  /v1/media?item=ID               the indexed file itself (with Range support), for the players
//   GET  /v1/preview?item=ID             a WebM of the hit's time range, when the browser cannot play the file
// Content parts are OpenAI's chat shapes (text, image_url, input_audio, video_url), media inlined as data: URIs or
// base64. Errors come back in OpenAI's shape, {"error": {"message", "type", "code"}}.
//
// API key: when the server answers 401, the page asks for the key, keeps it in localStorage and sends it as
// "Authorization: Bearer KEY" on every fetch. <img>, <video> and <audio> cannot send headers, so the key is also set
// as the cookie omni_embed_key, which the server accepts for GET /v1/thumbnail, /v1/media and /v1/preview.
//
// Test hooks (stable): #results carries data-searches (searches finished so far, with or without an error); each
// hit is <li class="hit" data-rank data-item data-modality data-path [data-start data-end]> (start/end in seconds,
// only for hits with a time range); players have class "player".

// ---------------------------------------------------------------------------------------------------------------
// API shapes

interface IndexInfo {
  model: string;
  sources: number;
  items: number;
  dim: number;
  modalities: Record<string, number>;
  late_fusion: boolean;
  /** The server's default frames weight (--late-weight), where it says. */
  late_weight?: number;
}

interface Hit {
  rank: number;
  score: number;
  path: string;
  modality: string;
  segment: number;
  item?: number;
  start?: number;
  end?: number;
  unit?: 'seconds' | 'characters';
  preview?: string;
}

interface SearchAnswer {
  object: 'list';
  data: Hit[];
}

type ContentPart =
  | { type: 'text'; text: string }
  | { type: 'image_url'; image_url: { url: string } }
  | { type: 'input_audio'; input_audio: { data: string; format: string } }
  | { type: 'video_url'; video_url: { url: string } };

interface SearchBody {
  query?: string | ContentPart[];
  like?: number;
  k: number;
  modality?: string[];
  late_weight?: number;
}

type Media = 'image' | 'audio' | 'video';

/** An HTTP error of the API, with the message of its OpenAI-shaped body when it has one. */
class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Elements

function byId<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page has no #${id}`);
  return el as T;
}

const ui = {
  indexInfo: byId<HTMLParagraphElement>('index-info'),
  keyForm: byId<HTMLFormElement>('key-form'),
  key: byId<HTMLInputElement>('key'),
  form: byId<HTMLFormElement>('search-form'),
  q: byId<HTMLInputElement>('q'),
  record: byId<HTMLButtonElement>('record'),
  drop: byId<HTMLLabelElement>('drop'),
  file: byId<HTMLInputElement>('file'),
  chosen: byId<HTMLDivElement>('chosen'),
  chosenName: byId<HTMLSpanElement>('chosen-name'),
  clearFile: byId<HTMLButtonElement>('clear-file'),
  modality: byId<HTMLSelectElement>('modality'),
  k: byId<HTMLInputElement>('k'),
  lateField: byId<HTMLLabelElement>('late-weight-field'),
  late: byId<HTMLInputElement>('late-weight'),
  lateValue: byId<HTMLOutputElement>('late-weight-value'),
  status: byId<HTMLParagraphElement>('status'),
  error: byId<HTMLParagraphElement>('error'),
  results: byId<HTMLOListElement>('results'),
};

// ---------------------------------------------------------------------------------------------------------------
// State

const KEY_STORAGE = 'omni-embed-api-key';
const KEY_COOKIE = 'omni_embed_key';

let apiKey: string | null = readStoredKey();
/** The file that goes with the next search (chosen, dropped or recorded), or null. */
let chosenFile: File | null = null;
/** Whether the index stores two vectors per video (frames, sound) that late_weight combines. */
let lateFusion = false;
/** The search in flight, aborted when a newer one starts. */
let inFlight: AbortController | null = null;
let searchesDone = 0;
/** The item of the last search when it was "more like this" (re-run as such when a setting changes). */
let lastLike: number | undefined;

function readStoredKey(): string | null {
  try {
    return localStorage.getItem(KEY_STORAGE);
  } catch {
    return null;  // storage disabled: the key lives only as long as the page
  }
}

/** Remembers the key, and sets the cookie that media elements' requests carry. */
function storeKey(key: string): void {
  apiKey = key;
  try {
    localStorage.setItem(KEY_STORAGE, key);
  } catch {
    // storage disabled: keep it in memory
  }
  document.cookie = `${KEY_COOKIE}=${encodeURIComponent(key)}; path=/; SameSite=Strict`;
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP

/** fetch() with the API key; a non-2xx answer throws an ApiError, and a 401 shows the key form. */
async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const headers = new Headers(init.headers);
  if (apiKey) headers.set('Authorization', `Bearer ${apiKey}`);
  const response = await fetch(path, { ...init, headers });
  if (!response.ok) {
    const error = new ApiError(response.status, await errorMessage(response));
    if (response.status === 401) showKeyForm();
    throw error;
  }
  return (await response.json()) as T;
}

/** The message of an error answer: OpenAI's {"error": {"message"}} when the body has it, else the status text. */
async function errorMessage(response: Response): Promise<string> {
  const text = await response.text().catch(() => '');
  try {
    const body: unknown = JSON.parse(text);
    if (typeof body === 'object' && body !== null && 'error' in body) {
      const error = (body as { error: unknown }).error;
      if (typeof error === 'object' && error !== null && 'message' in error) return String(error.message);
      if (typeof error === 'string') return error;
    }
  } catch {
    // not JSON: fall through
  }
  return text.trim().slice(0, 300) || response.statusText || 'request failed';
}

// ---------------------------------------------------------------------------------------------------------------
// Status and errors

function setStatus(text: string): void {
  ui.status.textContent = text;
}

function showError(error: unknown): void {
  // A first 401, before any key was given, only asks for the key (the form says so).
  if (error instanceof ApiError && error.status === 401 && !apiKey) return;
  if (error instanceof ApiError) ui.error.textContent = `HTTP ${error.status}: ${error.message}`;
  else if (error instanceof Error) ui.error.textContent = error.message;
  else ui.error.textContent = String(error);
}

function clearError(): void {
  ui.error.textContent = '';
}

// ---------------------------------------------------------------------------------------------------------------
// The API key form

function showKeyForm(): void {
  ui.keyForm.hidden = false;
  ui.key.value = '';
  ui.key.focus();
}

ui.keyForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const key = ui.key.value.trim();
  if (!key) return;
  storeKey(key);
  ui.keyForm.hidden = true;
  clearError();
  void loadIndex();
});

// ---------------------------------------------------------------------------------------------------------------
// The index: what the filters offer

const MODALITY_ORDER = ['text', 'image', 'audio', 'video'];

async function loadIndex(): Promise<void> {
  let info: IndexInfo;
  try {
    info = await api<IndexInfo>('/v1/index');
  } catch (error) {
    showError(error);
    return;
  }
  ui.keyForm.hidden = true;
  const names = Object.keys(info.modalities).sort((a, b) => orderOf(a) - orderOf(b) || a.localeCompare(b));
  const keep = ui.modality.value;
  ui.modality.replaceChildren(option('', `all (${info.items})`));
  for (const name of names) ui.modality.append(option(name, `${name} (${info.modalities[name]})`));
  ui.modality.value = names.includes(keep) ? keep : '';

  lateFusion = info.late_fusion === true;
  ui.lateField.hidden = !lateFusion;
  // Start the slider at the server's own default, so that searching without touching it changes nothing.
  if (lateFusion && typeof info.late_weight === 'number' && searchesDone === 0) {
    ui.late.value = String(info.late_weight);
    ui.lateValue.value = info.late_weight.toFixed(2);
  }
  ui.indexInfo.textContent = `${info.items} items from ${info.sources} files · ${info.model}`;
  ui.q.focus();
}

function orderOf(modality: string): number {
  const i = MODALITY_ORDER.indexOf(modality);
  return i < 0 ? MODALITY_ORDER.length : i;
}

function option(value: string, label: string): HTMLOptionElement {
  const o = document.createElement('option');
  o.value = value;
  o.textContent = label;
  return o;
}

ui.late.addEventListener('input', () => {
  ui.lateValue.value = Number(ui.late.value).toFixed(2);
});

// ---------------------------------------------------------------------------------------------------------------
// Query files: chosen, dropped or recorded

const EXTENSIONS: Record<string, Media> = {
  png: 'image', jpg: 'image', jpeg: 'image', webp: 'image', bmp: 'image', tif: 'image', tiff: 'image', gif: 'image',
  wav: 'audio', mp3: 'audio', flac: 'audio', ogg: 'audio', oga: 'audio', opus: 'audio', m4a: 'audio', aac: 'audio',
  mp4: 'video', m4v: 'video', mov: 'video', mkv: 'video', webm: 'video', avi: 'video',
};

function extensionOf(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot < 0 ? '' : name.slice(dot + 1).toLowerCase();
}

/** Which kind of medium a file is: its MIME type first, its extension when the browser gives no type. */
function mediaOf(file: File): Media | null {
  const major = file.type.split('/')[0];
  if (major === 'image' || major === 'audio' || major === 'video') return major;
  return EXTENSIONS[extensionOf(file.name)] ?? null;
}

/** The input_audio "format": the file's extension, else its MIME subtype (audio/mpeg is mp3). */
function audioFormat(file: File): string {
  const ext = extensionOf(file.name);
  if (ext) return ext;
  const subtype = (file.type.split('/')[1] ?? '').split(';')[0].replace(/^x-/, '');
  return subtype === 'mpeg' ? 'mp3' : subtype || 'wav';
}

function chooseFile(file: File | null): void {
  chosenFile = file;
  ui.chosen.hidden = !file;
  ui.chosenName.textContent = file ? `${file.name} (${formatBytes(file.size)})` : '';
  if (!file) ui.file.value = '';
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

function readDataUrl(file: File): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result));
    reader.onerror = () => reject(new Error(`could not read ${file.name}`));
    reader.readAsDataURL(file);
  });
}

/** The content part of a query file, inlined as a data: URI (images, videos) or base64 (audio). */
async function partOf(file: File): Promise<ContentPart> {
  const media = mediaOf(file);
  if (!media) throw new Error(`${file.name}: not an image, audio or video file`);
  let url = await readDataUrl(file);
  if (media === 'audio') {
    return { type: 'input_audio', input_audio: { data: url.slice(url.indexOf(',') + 1), format: audioFormat(file) } };
  }
  // A file the browser has no type for reads as application/octet-stream; the server probes the bytes anyway.
  if (media === 'image') return { type: 'image_url', image_url: { url } };
  if (url.startsWith('data:;') || url.startsWith('data:application/octet-stream;')) {
    url = `data:video/${extensionOf(file.name) || 'mp4'};` + url.slice(url.indexOf(';') + 1);
  }
  return { type: 'video_url', video_url: { url } };
}

ui.file.addEventListener('change', () => {
  const file = ui.file.files?.[0] ?? null;
  chooseFile(file);
  if (file) void search();
});

ui.clearFile.addEventListener('click', () => {
  chooseFile(null);
  ui.q.focus();
});

// Dropping: a file dropped on the drop zone, or anywhere on the page (rather than the browser opening it), is
// chosen and searched right away.
const dragsFiles = (event: DragEvent): boolean => event.dataTransfer?.types.includes('Files') ?? false;
window.addEventListener('dragover', (event) => {
  if (!dragsFiles(event)) return;
  event.preventDefault();
  ui.drop.classList.add('over');
});
window.addEventListener('dragleave', (event) => {
  if (event.relatedTarget === null) ui.drop.classList.remove('over');  // the pointer left the window
});
window.addEventListener('drop', (event) => {
  if (!dragsFiles(event)) return;
  event.preventDefault();
  ui.drop.classList.remove('over');
  const file = event.dataTransfer?.files[0];
  if (!file) return;
  chooseFile(file);
  void search();
});

// The microphone: record/stop; the recording (audio/webm) becomes the query file and is searched at once.
let recorder: MediaRecorder | null = null;

function canRecord(): boolean {
  return typeof MediaRecorder !== 'undefined' && typeof navigator.mediaDevices?.getUserMedia === 'function';
}

async function startRecording(): Promise<void> {
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  const type = MediaRecorder.isTypeSupported('audio/webm;codecs=opus') ? 'audio/webm;codecs=opus' : 'audio/webm';
  const chunks: Blob[] = [];
  const started = performance.now();
  recorder = new MediaRecorder(stream, { mimeType: type });
  recorder.addEventListener('dataavailable', (event) => chunks.push(event.data));
  recorder.addEventListener('stop', () => {
    stream.getTracks().forEach((track) => track.stop());
    recorder = null;
    setRecordButton(false);
    const seconds = Math.round((performance.now() - started) / 1000);
    const file = new File(chunks, 'recording.webm', { type: 'audio/webm' });
    chooseFile(file);
    ui.chosenName.textContent = `microphone recording (${formatTime(seconds)})`;
    void search();
  });
  recorder.start();
  setRecordButton(true);
  setStatus('Recording… press Stop to search with it.');
}

function setRecordButton(recording: boolean): void {
  ui.record.textContent = recording ? 'Stop' : 'Record';
  ui.record.setAttribute('aria-pressed', String(recording));
  ui.record.classList.toggle('recording', recording);
}

ui.record.hidden = !canRecord();
ui.record.addEventListener('click', () => {
  clearError();
  if (recorder) recorder.stop();
  else startRecording().catch((error: unknown) => {
    showError(new Error(`microphone: ${error instanceof Error ? error.message : String(error)}`));
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Searching

/** The k, modality and late-weight settings every search carries. */
function settings(): Omit<SearchBody, 'query' | 'like'> {
  const k = Math.min(100, Math.max(1, Math.round(Number(ui.k.value)) || 10));
  ui.k.value = String(k);
  const body: Omit<SearchBody, 'query' | 'like'> = { k };
  if (ui.modality.value) body.modality = [ui.modality.value];
  if (lateFusion) body.late_weight = Number(ui.late.value);
  return body;
}

/** A search with the text box and the chosen file (both parts when both are given), or "more like" an item. */
async function search(like?: number): Promise<void> {
  clearError();
  const body: SearchBody = settings();
  if (like !== undefined) {
    body.like = like;
  } else {
    const text = ui.q.value.trim();
    if (!text && !chosenFile) {
      showError(new Error('Type a query, or choose an image, audio or video file.'));
      searchFinished();
      return;
    }
    if (chosenFile) {
      const parts: ContentPart[] = [];
      if (text) parts.push({ type: 'text', text });
      try {
        parts.push(await partOf(chosenFile));
      } catch (error) {
        showError(error);
        searchFinished();
        return;
      }
      body.query = parts;
    } else {
      body.query = text;
    }
  }

  lastLike = like;
  inFlight?.abort();
  const controller = new AbortController();
  inFlight = controller;
  setStatus('Searching…');
  ui.results.setAttribute('aria-busy', 'true');
  const started = performance.now();
  try {
    const answer = await api<SearchAnswer>('/v1/search', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
      signal: controller.signal,
    });
    const ms = Math.round(performance.now() - started);
    renderHits(answer.data);
    // The "More like this" button that was pressed is gone: keep keyboard focus in the results.
    if (like !== undefined) ui.results.focus();
    const n = answer.data.length;
    setStatus(`${n} ${n === 1 ? 'hit' : 'hits'} in ${ms} ms`);
  } catch (error) {
    if (controller.signal.aborted) return;  // a newer search took over
    setStatus('');
    showError(error);
  } finally {
    if (inFlight === controller) {
      inFlight = null;
      ui.results.setAttribute('aria-busy', 'false');
      searchFinished();
    }
  }
}

/** Counts a finished search (answered, failed, or refused before sending) in #results' data-searches. */
function searchFinished(): void {
  ui.results.dataset.searches = String(++searchesDone);
}

ui.form.addEventListener('submit', (event) => {
  event.preventDefault();
  void search();
});

// A changed setting re-runs the last search, once there is one.
for (const control of [ui.modality, ui.k, ui.late]) {
  control.addEventListener('change', () => {
    if (searchesDone > 0 && (lastLike !== undefined || ui.q.value.trim() || chosenFile)) void search(lastLike);
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Results

/** m:ss (h:mm:ss past an hour). */
function formatTime(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** Creates an element with attributes and children (text children become text nodes, never HTML). */
function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {},
                                                  ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

/** The last part of a path, and the folder before it. */
function fileName(path: string): string {
  return path.slice(lastSeparator(path) + 1) || path;
}

function dirName(path: string): string {
  return path.slice(0, Math.max(0, lastSeparator(path)));
}

function lastSeparator(path: string): number {
  return Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\'));
}

/** The hit's time range in seconds, when it has one. */
function timeRange(hit: Hit): { start: number; end?: number } | null {
  if (hit.unit !== 'seconds' || hit.start === undefined) return null;
  return hit.end !== undefined && hit.end > hit.start ? { start: hit.start, end: hit.end } : { start: hit.start };
}

/** The media URL of an item with a media fragment (#t=start[,end]) so the player starts at the hit. */
function mediaUrl(item: number, range: { start: number; end?: number } | null): string {
  const url = `/v1/media?item=${item}`;
  if (!range) return url;
  return range.end !== undefined ? `${url}#t=${range.start},${range.end}` : `${url}#t=${range.start}`;
}

/**
 * A <video> or <audio> player of an item that starts at the hit's second (the fragment says so; loadedmetadata makes
 * sure). When the browser cannot play the file itself (an AVI, say), it falls back to the server's preview of the
 * hit's time range (a WebM made by FFmpeg, /v1/preview), which begins at the hit's start; data-preview says so.
 */
function player<K extends 'video' | 'audio'>(tag: K, item: number,
                                              range: { start: number; end?: number } | null): HTMLElementTagNameMap[K] {
  const media = el(tag, { class: 'player', controls: '', preload: 'metadata' });
  const start = range?.start ?? 0;
  let placed = false;
  media.addEventListener('loadedmetadata', () => {
    if (placed || media.dataset.preview) return;
    placed = true;
    if (start > 0 && Math.abs(media.currentTime - start) > 0.25) media.currentTime = start;
  });
  media.addEventListener('error', () => {
    if (media.dataset.preview) return;  // the preview failed too: the player shows its own error
    media.dataset.preview = '1';
    media.title = 'A preview made by the server (this browser cannot play the file itself); it begins at the hit';
    media.src = `/v1/preview?item=${item}`;
  });
  media.src = mediaUrl(item, range);
  return media;
}

function hitView(hit: Hit): HTMLLIElement {
  const li = el('li', { class: 'hit' });
  li.dataset.rank = String(hit.rank);
  li.dataset.modality = hit.modality;
  li.dataset.path = hit.path;
  if (hit.item !== undefined) li.dataset.item = String(hit.item);
  const range = timeRange(hit);
  if (range) {
    li.dataset.start = String(range.start);
    if (range.end !== undefined) li.dataset.end = String(range.end);
  }

  // What the hit looks like: a thumbnail, a player, or the passage.
  const view = el('div', { class: 'view' });
  const item = hit.item;
  if (hit.modality === 'image' && item !== undefined) {
    view.append(el('img', { class: 'thumb', src: `/v1/thumbnail?item=${item}`, alt: fileName(hit.path),
                            loading: 'lazy', decoding: 'async' }));
  } else if (hit.modality === 'video' && item !== undefined) {
    const video = player('video', item, range);
    const t = range ? `&t=${range.start}` : '';
    video.poster = `/v1/thumbnail?item=${item}${t}`;
    view.append(video);
  } else if (hit.modality === 'audio' && item !== undefined) {
    view.append(player('audio', item, range));
  } else if (hit.preview) {
    view.append(el('blockquote', { class: 'preview' }, hit.preview));
  }
  if (range) {
    const from = formatTime(range.start);
    const text = range.end !== undefined ? `${from}–${formatTime(range.end)}` : `from ${from}`;
    view.append(el('p', { class: 'range' }, text));
  }

  const head = el('div', { class: 'head' },
                  el('span', { class: 'rank' }, `#${hit.rank}`),
                  el('span', { class: `badge badge-${hit.modality}` }, hit.modality),
                  el('span', { class: 'score', title: 'cosine similarity' }, hit.score.toFixed(3)));
  const path = el('p', { class: 'path', title: hit.path }, el('strong', {}, fileName(hit.path)),
                  el('span', { class: 'dir' }, dirName(hit.path)));
  const like = el('button', { type: 'button', class: 'like' }, 'More like this');
  if (item === undefined) like.disabled = true;
  else like.addEventListener('click', () => void search(item));

  li.append(head, view, path, like);
  return li;
}

function renderHits(hits: Hit[]): void {
  ui.results.replaceChildren(...hits.map(hitView));
}

// ---------------------------------------------------------------------------------------------------------------
// Start

if (apiKey) storeKey(apiKey);  // the cookie may have gone with the browser session
void loadIndex();
