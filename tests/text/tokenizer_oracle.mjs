// Independent oracle for the C++ tokenizer (tests/text/tokenizer_oracle_test.cc): generates a deterministic set of
// varied strings and encodes them with @lenml/tokenizers (a port of the transformers.js tokenizers), writing one
// JSON object per line: {"text": ..., "ids": [...], "decoded_skip": ...} (decoded_skip: decode with
// skip_special_tokens). With --omni-out it first derives the Qwen2.5-Omni variant of the tokenizer.json (spec
// qwen25-omni-thinker.md §7.1: added tokens 151643..151664 with the Omni names, nothing from 151665 on), writes it
// there and uses it.
//
// Usage: node tokenizer_oracle.mjs --node-modules DIR --tokenizer tokenizer.json --out cases.jsonl
//                                  [--omni-out omni_tokenizer.json] [--seed N]
//
// Inputs where this oracle is known to deviate from Hugging Face tokenizers (the reference) are never generated:
//  - U+0085 NEXT LINE and U+FEFF ZERO WIDTH NO-BREAK SPACE: JavaScript's \s excludes U+0085 and includes U+FEFF,
//    the opposite of Unicode White_Space, which HF's Oniguruma/Rust \s follows.
//  - "'" followed by U+017F LATIN SMALL LETTER LONG S: HF's case-insensitive (?i:'s) matches it (ſ folds to s); the
//    oracle rewrites the group as [sS]. (This moves a pre-token boundary but cannot change ids with the Qwen
//    vocabulary, where "ſ" merges with nothing; excluded all the same.)
//  - Code points assigned after Unicode 15.0 (the data of utf8proc 2.8; node's ICU is newer): every pool below is
//    a block that has been stable for many versions.
// tests/text/tokenizer_test.cc checks the HF behaviour of these classes on the C++ side alone.
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, "")] = process.argv[i + 1];
for (const k of ["node-modules", "tokenizer", "out"]) {
  if (!args[k]) throw new Error(`missing --${k}`);
}
const seed = Number(args.seed ?? 20240611);

const lib = await import(pathToFileURL(path.join(args["node-modules"], "@lenml/tokenizers/dist/main.mjs")).href);

// ---------------------------------------------------------------- tokenizer.json (as shipped, or the Omni variant)
let tokenizerJSON = JSON.parse(fs.readFileSync(args.tokenizer, "utf8"));
const OMNI_NAMES = {
  151646: "<|AUDIO|>", 151647: "<|audio_bos|>", 151648: "<|audio_eos|>", 151649: "<|box_end|>",
  151650: "<|quad_start|>", 151651: "<|quad_end|>", 151652: "<|vision_bos|>", 151653: "<|vision_eos|>",
  151654: "<|vision_pad|>", 151655: "<|IMAGE|>", 151656: "<|VIDEO|>",
};
const shippedNames = tokenizerJSON.added_tokens.map((t) => t.content);
if (args["omni-out"]) {
  tokenizerJSON.added_tokens = tokenizerJSON.added_tokens
    .filter((t) => t.id >= 151643 && t.id <= 151664)
    .map((t) => ({ ...t, content: OMNI_NAMES[t.id] ?? t.content }));
  if (tokenizerJSON.added_tokens.length !== 22) throw new Error("expected 22 added tokens 151643..151664");
  fs.writeFileSync(args["omni-out"], JSON.stringify(tokenizerJSON));
  tokenizerJSON = JSON.parse(fs.readFileSync(args["omni-out"], "utf8"));
}
const tokenizer = lib.TokenizerLoader.fromPreTrained({
  tokenizerJSON,
  tokenizerConfig: { tokenizer_class: "Qwen2Tokenizer", clean_up_tokenization_spaces: false },
});
const addedNames = tokenizerJSON.added_tokens.map((t) => t.content);
const allNames = [...new Set([...addedNames, ...shippedNames, ...Object.values(OMNI_NAMES)])];

// ---------------------------------------------------------------- seeded generator
let state = seed >>> 0;
function rand() {  // mulberry32
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (a, b) => a + Math.floor(rand() * (b - a + 1));  // inclusive
const pick = (arr) => arr[Math.floor(rand() * arr.length)];
const chance = (p) => rand() < p;
const repeat = (n, f) => Array.from({ length: n }, f).join("");
const cp = (lo, hi) => String.fromCodePoint(int(lo, hi));
const fromRanges = (ranges) => { const [lo, hi] = pick(ranges); return cp(lo, hi); };

const WORDS = ("the of and to in is was for on that with as by it at from his an were are which this be or has had " +
  "not but first one their its new after who they have her she two been other when there all during into school " +
  "time may years more most only over city some world would where later up such used many can state about national " +
  "out known university united then made tokenizer embedding model vector audio video image Nemotron Qwen").split(" ");
const PUNCT = [".", ",", "!", "?", ";", ":", "...", "--", "-", "(", ")", "\"", "'", "[", "]", "{", "}", "/", "*",
  "&", "%", "$", "#", "@", "^", "~", "`", "|", "\\", "<", ">", "=", "+", "_", "…", "—", "–", "‘", "’", "“", "”",
  "«", "»", "¿", "¡", "§", "¶", "•", "©", "®", "°", "±", "×", "÷", "€", "£", "¥", "₹", "∞", "≈", "≠", "≤", "→", "★"];
const WHITESPACE = [" ", " ", " ", "\t", "\n", "\n", "\r\n", "\r", "\v", "\f", "\u00a0", "\u1680", "\u2000",
  "\u2003", "\u2009", "\u200a", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000"];
const CONTROLS = [[0x00, 0x08], [0x0e, 0x1f], [0x7f, 0x84], [0x86, 0x9f], [0xad, 0xad], [0x200b, 0x200d],
  [0x2060, 0x2060], [0x180e, 0x180e], [0xe000, 0xe0ff], [0xfffd, 0xfffd]];
const CJK = [[0x4e00, 0x9fa5], [0x3041, 0x3096], [0x30a1, 0x30fa], [0xac00, 0xd7a3], [0xff10, 0xff19],
  [0xff21, 0xff3a], [0x3001, 0x3002], [0x300c, 0x300f], [0xff01, 0xff01], [0xff0c, 0xff0c], [0x30fc, 0x30fc]];
const SCRIPTS = {
  arabic: [[0x0621, 0x063a], [0x0641, 0x064a], [0x064b, 0x0652], [0x0660, 0x0669], [0x060c, 0x060c], [0x061f, 0x061f],
    [0x06f0, 0x06f9]],
  hebrew: [[0x05d0, 0x05ea], [0x05b0, 0x05bc]],
  devanagari: [[0x0905, 0x0939], [0x093e, 0x094d], [0x093c, 0x093c], [0x0902, 0x0903], [0x0966, 0x096f],
    [0x0964, 0x0965]],
  bengali: [[0x0985, 0x09b9], [0x09be, 0x09cd], [0x09e6, 0x09ef]],
  tamil: [[0x0b85, 0x0bb9], [0x0bbe, 0x0bcd], [0x0be6, 0x0bf2]],
  thai: [[0x0e01, 0x0e30], [0x0e31, 0x0e3a], [0x0e40, 0x0e4e], [0x0e50, 0x0e59]],
  cyrillic: [[0x0410, 0x044f], [0x0400, 0x040f]],
  greek: [[0x0391, 0x03a9], [0x03b1, 0x03c9], [0x0386, 0x038f]],
};
const RARE = [[0x10d0, 0x10fa], [0x0531, 0x0556], [0x0561, 0x0586], [0x1200, 0x1248], [0x13a0, 0x13f4],
  [0x0f40, 0x0f6a], [0x0f20, 0x0f33], [0x1820, 0x1877], [0x1810, 0x1819], [0x16a0, 0x16ea], [0x1681, 0x169a],
  [0x10330, 0x1034a], [0x10000, 0x1000b], [0x10300, 0x1031e], [0x12000, 0x12398], [0x1d400, 0x1d433],
  [0x1d7ce, 0x1d7ff], [0x10400, 0x1044f], [0x13000, 0x1342e], [0x2160, 0x216b], [0x2460, 0x2473], [0x2070, 0x2070],
  [0x2074, 0x2079], [0x2080, 0x2089], [0x3007, 0x3007], [0x3021, 0x3029], [0x00b2, 0x00b3], [0x00b9, 0x00b9],
  [0x00bc, 0x00be], [0x00aa, 0x00aa], [0x00ba, 0x00ba], [0x00b5, 0x00b5], [0x02b0, 0x02c1], [0x01c4, 0x01cc],
  [0x00df, 0x00df], [0x2200, 0x22ff], [0x2190, 0x21ff], [0x2600, 0x26ff]];
const EMOJI_BASE = [[0x1f600, 0x1f64f], [0x1f300, 0x1f3fa], [0x1f680, 0x1f6c5], [0x1f90c, 0x1f93a], [0x2600, 0x2604],
  [0x2764, 0x2764]];
const NFC_WORDS = ["café", "naïve", "Ångström", "résumé", "Đặng Thị Ngọc", "São Paulo", "Zürich", "français",
  "ñandú", "Tiếng Việt", "한국어", "Ελληνικά", "Ầ", "ǖ", "ḯ", "ễ", "\ufb01", "\u2126", "\u212b", "\u212a", "ǅ", "Ÿ", "ṩ", "ொ", "ো",
  "क़", "שּׁ", "ḍ̇", "q̃", "x̧̌"];

function word() {
  let w = pick(WORDS);
  if (chance(0.15)) w = w[0].toUpperCase() + w.slice(1);
  if (chance(0.03)) w = w.toUpperCase();
  return w;
}
function prose() {
  let s = "";
  for (let n = int(1, 30); n > 0; --n) {
    s += word();
    if (chance(0.12)) s += pick([",", ".", "!", "?", ";", ":", "'s", "'t", "'re", "n't", "'ll", "'d", "'m"]);
    s += chance(0.92) ? " " : pick(["  ", "\n", "\n\n", "\t", " - "]);
  }
  return chance(0.5) ? s.trimEnd() + "." : s;
}
function code() {
  const IDS = ["x", "i", "foo", "barBaz", "snake_case", "MAX_LEN", "self", "this", "tok", "__init__", "len"];
  const PARTS = ["def ", "return ", "if ", "for ", " in ", "while ", "class ", "import ", "const ", "let ", "=> ",
    " = ", " == ", " != ", "->", "::", "+=", "++", "&&", "||", "(", ")", "[", "]", "{", "}", ":", ";", ", ", ".",
    "\"str\\n\"", "'c'", "// note", "# comment", "/* x */", "0x1F", "3.14e-10", "1_000", "\n", "\n    ", "\n\t",
    "\n        ", "    ", "\t\t", "<div>", "</div>", "\"\"\"doc\"\"\"", "#include <vector>", "std::", "@decorator"];
  return repeat(int(3, 40), () => (chance(0.35) ? pick(IDS) : pick(PARTS)));
}
function numbers() {
  const N = [() => repeat(int(1, 40), () => String(int(0, 9))), () => `${int(0, 99999)}.${int(0, 999)}`,
    () => `${int(1, 999)},${String(int(0, 999)).padStart(3, "0")}`,
    () => `+1 (${int(100, 999)}) ${int(100, 999)}-${int(1000, 9999)}`,
    () => `${int(1, 31)}/${int(1, 12)}/${int(1900, 2099)}`,
    () => `${int(0, 23)}:${String(int(0, 59)).padStart(2, "0")}`,
    () => `v${int(0, 9)}.${int(0, 20)}.${int(0, 99)}`, () => `${int(1, 9)}e${int(-30, 30)}`, () => `-${int(0, 1e6)}`,
    () => `${int(0, 100)}%`, () => `$${int(0, 1e5)}.${int(10, 99)}`, () => `${int(1, 999)}km`];
  return repeat(int(1, 8), () => pick(N)() + pick([" ", " ", "", "\n", ", ", "x"]));
}
function whitespace() {
  const UNITS = [() => pick(WHITESPACE), () => repeat(int(1, 12), () => pick(WHITESPACE)), () => word(),
    () => pick(PUNCT), () => String(int(0, 99)), () => " ".repeat(int(2, 40)), () => "\t".repeat(int(1, 6)),
    () => "\r\n".repeat(int(1, 4)), () => pick(SCRIPTS.cyrillic.map(([lo]) => String.fromCodePoint(lo)))];
  return repeat(int(1, 14), () => pick(UNITS)());
}
function contractions() {
  const C = ["'s", "'S", "'t", "'T", "'re", "'RE", "'Re", "'rE", "'ve", "'VE", "'Ve", "'m", "'M", "'ll", "'LL",
    "'lL", "'d", "'D", "'", "''", "'x", "' s", "’s", "'r", "'v", "'l", "'sa", "'tis", "'99", "'ré"];
  const BASE = ["I", "you", "YOU", "it", "He", "they", "We", "don", "can", "won", "she", "o", "rock n", "", " ", "\n"];
  return repeat(int(1, 6), () => pick(BASE) + pick(C) + (chance(0.5) ? pick([" ", "", "\n", "!", " x"]) : ""));
}
function punctuation() {
  return repeat(int(1, 8), () => {
    const run = repeat(int(1, 6), () => pick(PUNCT));
    return (chance(0.5) ? " " : "") + run + pick(["\n", "\n\n", "\r\n", "\r\n\r\n", "\n  ", "", " ", "\n\t"]) +
      (chance(0.5) ? word() : "");
  });
}
const scriptText = (ranges, n) =>
  repeat(n, () => (chance(0.12) ? pick([" ", " ", "\n", ", ", ". "]) : fromRanges(ranges)));
function cjk() { return scriptText(CJK, int(1, 40)) + (chance(0.4) ? " " + prose().slice(0, 30) : ""); }
function scripts() {
  const name = pick(Object.keys(SCRIPTS));
  return scriptText(SCRIPTS[name], int(1, 40)) + (chance(0.3) ? " " + String(int(0, 999)) : "");
}
function combining() {
  const forms = [() => pick(NFC_WORDS), () => pick(NFC_WORDS).normalize("NFD"),
    () => pick(NFC_WORDS).normalize("NFD").normalize("NFC"),
    () => pick("aeiouAEIOUnczsgrqx") + repeat(int(1, 3), () => cp(0x0300, 0x036f)),
    () => cp(0x1100, 0x1112) + cp(0x1161, 0x1175) + (chance(0.5) ? cp(0x11a8, 0x11c2) : ""),
    () => repeat(int(1, 3), () => cp(0x0300, 0x036f)),
    () => pick(["\u0BC6\u0BBE", "\u09C7\u09BE", "\u0915\u093C", "e\u0323\u0302", "e\u0302\u0323", "A\u030A",
      "\u212B", "\u2126", "o\u031B\u0301"])];
  return repeat(int(1, 6), () => pick(forms)() + pick([" ", "", "", "\n", "."]));
}
function emoji() {
  const E = [() => fromRanges(EMOJI_BASE), () => fromRanges(EMOJI_BASE) + cp(0x1f3fb, 0x1f3ff),
    () => "👨\u200d👩\u200d👧\u200d👦", () => "🏳\ufe0f\u200d🌈", () => "👩🏽\u200d💻", () => "❤\ufe0f",
    () => cp(0x1f1e6, 0x1f1ff) + cp(0x1f1e6, 0x1f1ff), () => String(int(0, 9)) + "\ufe0f\u20e3",
    () => "🏴\u{e0067}\u{e0062}\u{e0065}\u{e006e}\u{e0067}\u{e007f}", () => "🇫🇷🇩🇪🇯🇵"];
  return repeat(int(1, 8), () => pick(E)() + (chance(0.4) ? pick([" ", "", word(), "!", "\n"]) : ""));
}
function rare() {
  return repeat(int(1, 20), () => (chance(0.15) ? pick([" ", "", "\n", "-", word()]) : fromRanges(RARE)));
}
function specials() {
  const partial = (n) => pick([n, n, n, n.slice(0, -1), n.slice(1), n.slice(0, -2), "<" + n, n + ">", n.toUpperCase()]);
  const UNITS = [() => partial(pick(allNames)), () => pick(addedNames), () => pick(addedNames), () => word(),
    () => pick(["\n", " ", "user\n", "system\n", "assistant\n", "<", "<|", "|>", ">", "\u0301", "<|<|im_end|>"]),
    () => pick(addedNames) + pick(addedNames), () => prose().slice(0, 40)];
  return repeat(int(1, 10), () => pick(UNITS)());
}
function mixture() {
  const GEN = [prose, code, numbers, whitespace, contractions, punctuation, cjk, scripts, combining, emoji, rare,
    specials, () => fromRanges(CONTROLS), () => pick(WHITESPACE)];
  // Cut by code points (a UTF-16 slice could leave half a surrogate pair).
  return repeat(int(2, 6), () => { const s = Array.from(pick(GEN)()); return s.slice(0, int(1, s.length)).join(""); });
}
function long() {
  return pick([() => repeat(int(200, 600), () => pick([prose, code, cjk, scripts, emoji, specials])()),
    () => repeat(int(500, 3000), () => String(int(0, 9))), () => " ".repeat(int(100, 3000)) + word(),
    () => "a".repeat(int(100, 4000)), () => "\n".repeat(int(50, 500)) + " x",
    () => repeat(int(50, 300), () => pick(PUNCT)), () => repeat(int(50, 400), () => pick(WHITESPACE))])();
}

const FIXED = ["", " ", "  ", "\n", "\r\n", "\t", "a", "user", "system", "assistant", " hello", "hello world",
  "Hello, World!", "x  y", "x \ty", "a\n\nb", "a \n b", "a  \n", "end   ", "   start", "12345", " 1", "  1",
  "it's", "IT'S", "I'm", "we'VE", "'", "'s", "!!!\n\n", "...", " !!", "  !!", "<|im_start|>user\nhi<|im_end|>\n",
  "<|endoftext|>", "<|endoftext|><|endoftext|>", "<|im_start|", "<<|im_start|>>", "café", "cafe\u0301",
  "한국어", "\u1112\u1161\u11ab", "👨‍👩‍👧‍👦", "🇫🇷", "1️⃣", "\u00a0x", "\u3000x", "x\u2028y", "\u0000", "\u007f",
  "\t\tdef f():\n\t\treturn 1\n", "Ⅻ ½ ² ①", "𝐀𝐁𝐂 𝟎𝟏𝟐", "\u200b\u200d"];

const GENERATORS = [[prose, 300], [code, 250], [numbers, 200], [whitespace, 300], [contractions, 200],
  [punctuation, 200], [cjk, 200], [scripts, 250], [combining, 200], [emoji, 200], [rare, 150], [specials, 250],
  [mixture, 300], [long, 24]];

// Keeps the documented deviation classes out (see the header).
const deviates = (s) => /[\u0085\ufeff]/u.test(s) || /'\u017f/u.test(s);

const cases = [...FIXED];
for (const [gen, n] of GENERATORS) for (let i = 0; i < n; ++i) cases.push(gen());
const out = fs.openSync(args.out, "w");
let written = 0;
for (const text of cases) {
  if (deviates(text)) continue;
  const ids = tokenizer.encode(text, { add_special_tokens: false });
  const decoded_skip = ids.length ? tokenizer.decode(ids, { skip_special_tokens: true }) : "";
  fs.writeSync(out, JSON.stringify({ text, ids, decoded_skip }) + "\n");
  ++written;
}
fs.closeSync(out);
console.error(`tokenizer_oracle: ${written} cases (seed ${seed}) -> ${args.out}`);
