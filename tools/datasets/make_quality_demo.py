#!/usr/bin/env python3
"""Generate datasets/quality-demo: a small, fully synthetic multimodal retrieval set in the BEIR layout.

    /usr/bin/python3 tools/datasets/make_quality_demo.py [OUT_DIR]

Every item has known attributes, so relevance is exact by construction:
  * shape pictures: 8 colours x 5 shapes (circle, square, triangle, star, ring), two renderings each
    (shape-<colour>-<shape>-<0|1>), at varied sizes and positions on plain or lightly textured backgrounds;
  * shape passages: one sentence per colour/shape pair (text-<colour>-<shape>);
  * scanned documents: short phrases drawn with PIL's default bitmap font, scaled x2 nearest-neighbour
    (scan-<slug>), and one passage describing each (note-<slug>);
  * spoken documents: each scanned document's phrase read by espeak-ng (speech-<slug>, audio/*.flac);
  * distractor passages on unrelated topics (other-NN).
Queries are natural-language text, plus five image queries (a third rendering of a shape, images/query-*.png)
and three spoken queries (a document query read by espeak-ng, audio/query-*.flac).
Graded qrels: 2 = exact match (same colour and shape / the document asked about), 1 = partial (same colour,
other shape / a related document). The standard library, Pillow, and the espeak-ng and ffmpeg commands are used;
output is deterministic (one seeded random.Random, sorted files, PNGs without timestamps, FLAC written with
FFmpeg's bitexact flags), so a rerun with the same espeak-ng gives byte-identical files.
"""

import json
import math
import random
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

SEED = 20240611
COLOURS = {"red": (214, 32, 32), "orange": (242, 133, 18), "yellow": (236, 200, 10), "green": (34, 150, 60),
           "blue": (32, 78, 214), "purple": (128, 48, 168), "pink": (238, 104, 176), "brown": (118, 70, 30)}
SHAPES = ["circle", "square", "triangle", "star", "ring"]
SIZES = [(56, 56), (64, 64), (84, 56), (56, 84), (96, 96), (112, 84), (84, 112), (112, 112)]
SHAPE_SENTENCES = ["{A} {c} {s} sits in the middle of a white page.",
                   "The picture shows a single {c} {s} on a plain background.",
                   "A drawing of one {c} {s} and nothing else.",
                   "{A} {c} {s} is drawn near the edge of a light grey sheet.",
                   "A small card printed with {a} {c} {s}.",
                   "This image contains {a} {c} {s} on a faintly textured background."]
# (slug, phrase drawn on the scan, passage about it, extra tags); a document's tags also include its slug.
DOCUMENTS = [
    ("invoice-42", "invoice total 42 euros", "The invoice lists a total amount of 42 euros, payable within thirty days.", "invoice money"),
    ("invoice-17", "invoice total 17 euros", "An invoice for 17 euros covering two hours of repair work.", "invoice money"),
    ("invoice-due", "invoice due in march", "This invoice must be paid before the end of March.", "invoice money"),
    ("receipt-coffee", "receipt: coffee 3 euros", "A till receipt for one coffee that cost 3 euros.", "receipt money food"),
    ("receipt-bread", "receipt: bread 2 euros", "A bakery receipt: one loaf of bread for 2 euros.", "receipt money food"),
    ("lecture-optics", "lecture 3: optics", "Lecture three of the physics course covers optics: lenses, mirrors and the refraction of light.", "lecture physics"),
    ("lecture-heat", "lecture 4: heat and entropy", "Lecture four introduces thermodynamics: heat, work and entropy.", "lecture physics thermo"),
    ("lecture-gravity", "lecture 5: gravity", "Lecture five derives Newton's law of gravitation and planetary orbits.", "lecture physics"),
    ("exam-algebra", "exam: algebra part 2", "The second part of the algebra exam asks for the solution of linear equations.", "exam maths"),
    ("exam-engines", "exam: heat engines", "An exam question on heat engines and the efficiency of the Carnot cycle.", "exam physics thermo"),
    ("menu-soup", "menu: soup of the day", "The restaurant menu offers a soup of the day served with fresh bread.", "menu food"),
    ("menu-pasta", "menu: pasta 9 euros", "On the lunch menu, a plate of pasta costs 9 euros.", "menu food money"),
    ("train-paris", "train to paris 10:15", "The train to Paris leaves at 10:15 from platform two.", "train travel"),
    ("train-berlin", "train to berlin 8:40", "The morning train to Berlin departs at 8:40.", "train travel"),
    ("flight-gate", "flight 718 gate b12", "Boarding for flight 718 takes place at gate B12.", "flight travel"),
    ("meeting-room", "meeting room 4 at noon", "The team meeting is held in room 4 at noon.", "meeting"),
    ("meeting-friday", "meeting moved to friday", "The weekly meeting has been moved to Friday afternoon.", "meeting"),
    ("weather-rain", "weather: rain today", "Today's forecast: rain all day with a cool wind.", "weather"),
    ("weather-sun", "weather: sunny and warm", "The forecast promises a sunny and warm weekend.", "weather"),
    ("recipe-pie", "recipe: apple pie", "To bake an apple pie, slice the apples, add sugar and cinnamon, and bake for forty minutes.", "recipe food"),
    ("recipe-soup", "recipe: tomato soup", "A tomato soup recipe: simmer tomatoes with onion and garlic, then blend.", "recipe food"),
    ("parking-permit", "parking permit 2024", "A residents' parking permit valid for the year 2024.", "permit"),
    ("library-card", "library card expired", "The library card has expired and must be renewed at the front desk.", "library"),
    ("shopping-list", "shopping list: milk eggs", "A shopping list with two entries: milk and eggs.", "shopping food"),
]
DISTRACTORS = [
    ("Volcanoes", "Most volcanoes form where tectonic plates meet, and an eruption can reshape a landscape within days."),
    ("Honeybees", "A honeybee colony can hold tens of thousands of workers, each living only a few weeks in summer."),
    ("Chess", "In chess, castling moves the king two files towards a rook and places the rook beside it."),
    ("Glaciers", "Glaciers move slowly downhill under their own weight, carving valleys as they go."),
    ("Arctic terns", "Arctic terns migrate from pole to pole each year, the longest journey of any bird."),
    ("Bicycles", "The first pedal-driven bicycles appeared in the 1860s and were nicknamed boneshakers."),
    ("Photosynthesis", "Plants turn sunlight, water and carbon dioxide into sugar and oxygen."),
    ("Roman roads", "Roman engineers built roads in layers of sand, gravel and paving stones that lasted for centuries."),
    ("Octopuses", "An octopus has three hearts and can squeeze through any gap larger than its beak."),
    ("Printing", "Gutenberg's printing press made books far cheaper in fifteenth-century Europe."),
    ("Caves", "Limestone caves grow over thousands of years as water slowly dissolves the rock."),
    ("Violins", "A violin has four strings tuned in fifths and is played with a bow strung with horsehair."),
    ("Lighthouses", "Lighthouse keepers once trimmed lamp wicks through the night to keep the beam burning."),
    ("Sleep", "Adults typically need seven to nine hours of sleep, and deep sleep comes mostly early in the night."),
    ("Marathon", "The marathon distance of 42.195 kilometres was fixed at the 1908 London Olympics."),
    ("Compilers", "A compiler translates source code into machine instructions before the program runs."),
    ("Penguins", "Emperor penguins huddle together through the Antarctic winter to share warmth."),
    ("Silk", "Silk is spun by silkworm caterpillars, which wrap themselves in a single long thread."),
    ("Bridges", "Suspension bridges hang their deck from cables draped over tall towers."),
    ("Earthquakes", "Seismographs record earthquakes as traces whose amplitude grows with the energy released."),
    ("Pendulums", "A pendulum of fixed length swings with a nearly constant period, which is why pendulum clocks keep time."),
    ("Humpback whales", "Humpback whales sing long, repeating songs that can travel for many kilometres underwater."),
    ("Origami", "Origami folds a single sheet of paper into figures without cutting or gluing."),
    ("Leafcutter ants", "Leafcutter ants do not eat leaves; they use them to grow a fungus that feeds the colony."),
    ("Vaccines", "Vaccines train the immune system to recognise a pathogen without causing the disease."),
    ("Everest", "Mount Everest rises by a few millimetres a year as the Indian plate pushes northwards."),
    ("Knitting", "Knitting builds fabric from rows of interlocking loops made with two needles."),
    ("Amazon", "The Amazon carries more water to the sea than the next seven largest rivers combined."),
    ("Typewriters", "The QWERTY layout was meant partly to keep the type bars of early typewriters from jamming."),
    ("Bats", "Bats find insects in the dark by echolocation, listening for the echoes of their own calls."),
    ("Football", "A football match lasts ninety minutes, split into two halves of forty-five minutes."),
    ("Mosses", "Mosses have no roots; they absorb water directly through their thin leaves."),
]
# Text queries on shapes: (text, colour or None, shape or None).
SHAPE_QUERIES = [
    ("a red circle", "red", "circle"), ("a blue square", "blue", "square"), ("picture of a green triangle", "green", "triangle"),
    ("a yellow star", "yellow", "star"), ("a purple ring", "purple", "ring"), ("an orange circle", "orange", "circle"),
    ("a pink star", "pink", "star"), ("a brown square", "brown", "square"), ("a green ring", "green", "ring"),
    ("a red triangle", "red", "triangle"), ("a yellow square on a page", "yellow", "square"),
    ("an orange star", "orange", "star"), ("a pink triangle", "pink", "triangle"), ("a purple circle", "purple", "circle"),
    ("a red shape", "red", None), ("something green", "green", None), ("a picture with a blue shape", "blue", None),
    ("a star", None, "star"), ("a ring drawn on a page", None, "ring"), ("a triangle of any colour", None, "triangle"),
]
# Image queries: a further rendering of (colour, shape); text "" or a generic instruction.
IMAGE_QUERIES = [("blue", "star", ""), ("green", "circle", ""), ("orange", "ring", "pictures like this one"),
                 ("yellow", "triangle", ""), ("brown", "square", "pictures like this one")]
# Text queries on documents: (text, tag for grade 2, tag for grade 1 or None).
DOC_QUERIES = [
    ("an invoice", "invoice", None), ("invoice with a total of 42 euros", "invoice-42", "invoice"),
    ("a shop receipt", "receipt", None), ("a document about thermodynamics", "thermo", "physics"),
    ("physics lecture notes", "lecture", "physics"), ("lecture on optics and light", "lecture-optics", "lecture"),
    ("an exam paper", "exam", None), ("a restaurant menu", "menu", None),
    ("train departure to Paris", "train-paris", "train"), ("travel tickets and boarding information", "travel", None),
    ("when is the meeting", "meeting", None), ("weather forecast", "weather", None),
    ("a cooking recipe", "recipe", "food"), ("how much did the coffee cost", "receipt-coffee", "receipt"),
    ("a parking permit", "parking-permit", None),
]
# Document queries that are also asked aloud (indexes into DOC_QUERIES).
SPOKEN_QUERIES = [0, 5, 13]


def speak(text, path):
    """text read by espeak-ng (default voice, 22,050 Hz), stored as 16 kHz mono FLAC without metadata."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        subprocess.run(["espeak-ng", "-w", str(wav), text], check=True)
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav), "-ar", "16000", "-ac", "1",
                        "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact", "-c:a", "flac",
                        str(path)], check=True)


def article(colour, capital=False):
    a = "an" if colour[0] in "aeiou" else "a"
    return a.capitalize() if capital else a


def background(rng, w, h):
    kind = rng.choice(["white", "grey", "cream", "grid", "dots"])
    img = Image.new("RGB", (w, h), {"grey": (236, 236, 236), "cream": (250, 245, 228)}.get(kind, (255, 255, 255)))
    draw = ImageDraw.Draw(img)
    if kind == "grid":
        step = rng.randint(8, 14)
        for x in range(rng.randint(0, step - 1), w, step):
            draw.line([(x, 0), (x, h - 1)], fill=(226, 230, 236))
        for y in range(rng.randint(0, step - 1), h, step):
            draw.line([(0, y), (w - 1, y)], fill=(226, 230, 236))
    elif kind == "dots":
        for _ in range(w * h // 60):
            v = rng.randint(215, 240)
            draw.point((rng.randrange(w), rng.randrange(h)), fill=(v, v, v))
    return img


def render_shape(rng, colour, shape):
    """One picture: the shape is drawn on a 4x mask and box-filtered down, so its edges are anti-aliased."""
    w, h = rng.choice(SIZES)
    img = background(rng, w, h)
    r = rng.uniform(0.24, 0.42) * min(w, h)
    cx, cy = rng.uniform(r + 2, w - r - 2), rng.uniform(r + 2, h - r - 2)
    S = 4
    mask = Image.new("L", (w * S, h * S), 0)
    draw = ImageDraw.Draw(mask)
    box = [S * (cx - r), S * (cy - r), S * (cx + r), S * (cy + r)]

    def polygon(n, start, radii):
        pts = [(S * (cx + radii[i % len(radii)] * math.cos(start + 2 * math.pi * i / n)),
                S * (cy + radii[i % len(radii)] * math.sin(start + 2 * math.pi * i / n))) for i in range(n)]
        draw.polygon(pts, fill=255)

    if shape == "circle":
        draw.ellipse(box, fill=255)
    elif shape == "ring":
        draw.ellipse(box, outline=255, width=max(S * 3, round(S * r * 0.32)))
    elif shape == "square":
        polygon(4, math.radians(45 + rng.uniform(-12, 12)), [r * 1.15])
    elif shape == "triangle":
        polygon(3, math.radians(-90 + rng.uniform(-15, 15)), [r * 1.1])
    else:  # five-pointed star
        polygon(10, math.radians(-90 + rng.uniform(-15, 15)), [r * 1.15, r * 0.48])
    mask = mask.resize((w, h), Image.Resampling.BOX)
    img.paste(Image.new("RGB", (w, h), COLOURS[colour]), (0, 0), mask)
    return img


def render_scan(rng, phrase):
    """A 'scanned document': the phrase wrapped at 8 characters, drawn at 1x with the default font, scaled x2."""
    lines = []
    for word in phrase.split():
        assert len(word) <= 8, word
        if lines and len(lines[-1]) + 1 + len(word) <= 8:
            lines[-1] += " " + word
        else:
            lines.append(word)
    assert len(lines) <= 4, phrase
    w, h = max(28, 6 * max(map(len, lines)) + 8), max(28, 12 * len(lines) + 8)
    paper = rng.randint(238, 252)
    img = Image.new("RGB", (w, h), (paper, paper, paper - 6))
    draw = ImageDraw.Draw(img)
    for _ in range(w * h // 80):  # scanner speckle
        v = paper - rng.randint(12, 30)
        draw.point((rng.randrange(w), rng.randrange(h)), fill=(v, v, v))
    font = ImageFont.load_default()
    x0, y0 = rng.randint(2, w - 6 * max(map(len, lines)) - 2), rng.randint(2, h - 12 * len(lines) - 2)
    for i, line in enumerate(lines):
        draw.text((x0, y0 + 12 * i), line, font=font, fill=(24, 24, 32))
    return img.resize((2 * w, 2 * h), Image.Resampling.NEAREST)


def main():
    root = Path(__file__).resolve().parents[2]
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else root / "datasets" / "quality-demo"
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "qrels").mkdir(exist_ok=True)
    (out / "audio").mkdir(exist_ok=True)
    for stale in [*(out / "images").glob("*.png"), *(out / "audio").glob("*.flac")]:
        stale.unlink()
    rng = random.Random(SEED)
    images, speech, corpus, queries, qrels = {}, {}, [], [], {}

    def add_doc(_id, text="", title="", image=None):
        doc = {"_id": _id, "title": title, "text": text}
        if image is not None:
            doc["image"] = f"images/{_id}.png"
            images[doc["image"]] = image
        corpus.append(doc)

    for colour in COLOURS:
        for shape in SHAPES:
            for k in range(2):
                add_doc(f"shape-{colour}-{shape}-{k}", image=render_shape(rng, colour, shape))
            sentence = rng.choice(SHAPE_SENTENCES)
            add_doc(f"text-{colour}-{shape}", sentence.format(A=article(colour, True), a=article(colour), c=colour, s=shape))
    for slug, phrase, passage, _ in DOCUMENTS:
        add_doc(f"scan-{slug}", image=render_scan(rng, phrase))
        add_doc(f"note-{slug}", passage)
        speech[f"audio/speech-{slug}.flac"] = phrase
        corpus.append({"_id": f"speech-{slug}", "title": "", "text": "", "audio": f"audio/speech-{slug}.flac"})
    for i, (title, text) in enumerate(DISTRACTORS):
        add_doc(f"other-{i:02d}", text, title)

    def shape_ids(colour, shape):
        return [f"shape-{colour}-{shape}-0", f"shape-{colour}-{shape}-1", f"text-{colour}-{shape}"]

    def judge_shapes(qid, colour, shape):
        for c in COLOURS:
            for s in SHAPES:
                grade = 2 if (colour in (None, c) and shape in (None, s)) else 1 if (shape and c == colour) else 0
                for doc_id in shape_ids(c, s) if grade else []:
                    qrels[qid, doc_id] = grade

    n = 0
    for text, colour, shape in SHAPE_QUERIES:
        n += 1
        queries.append({"_id": f"q{n:02d}", "text": text})
        judge_shapes(f"q{n:02d}", colour, shape)
    for colour, shape, text in IMAGE_QUERIES:
        n += 1
        image = f"images/query-{colour}-{shape}.png"
        images[image] = render_shape(rng, colour, shape)
        queries.append({"_id": f"q{n:02d}", "text": text, "image": image})
        judge_shapes(f"q{n:02d}", colour, shape)
    def judge_documents(qid, exact, partial):
        for slug, _, _, tags in DOCUMENTS:
            tags = {slug, *tags.split()}
            grade = 2 if exact in tags else 1 if partial in tags else 0
            for doc_id in [f"scan-{slug}", f"note-{slug}", f"speech-{slug}"] if grade else []:
                qrels[qid, doc_id] = grade

    for text, exact, partial in DOC_QUERIES:
        n += 1
        queries.append({"_id": f"q{n:02d}", "text": text})
        judge_documents(f"q{n:02d}", exact, partial)
    for k in SPOKEN_QUERIES:
        text, exact, partial = DOC_QUERIES[k]
        n += 1
        path = f"audio/query-{exact}.flac"
        speech[path] = text
        queries.append({"_id": f"q{n:02d}", "text": "", "audio": path})
        judge_documents(f"q{n:02d}", exact, partial)

    for path, img in sorted(images.items()):
        img.save(out / path, format="PNG", optimize=False, compress_level=9)
    for path, text in sorted(speech.items()):
        speak(text, out / path)

    def write_jsonl(name, rows):
        with open(out / name, "w", encoding="utf-8", newline="\n") as f:
            for row in sorted(rows, key=lambda r: r["_id"]):
                f.write(json.dumps(row, ensure_ascii=False) + "\n")

    write_jsonl("corpus.jsonl", corpus)
    write_jsonl("queries.jsonl", queries)
    with open(out / "qrels" / "test.tsv", "w", encoding="utf-8", newline="\n") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for (qid, doc_id), grade in sorted(qrels.items()):
            f.write(f"{qid}\t{doc_id}\t{grade}\n")
    (out / "README.md").write_text(README.format(
        n_corpus=len(corpus), n_queries=len(queries), n_qrels=len(qrels), n_images=len(images), n_audio=len(speech),
        n_docs=len(DOCUMENTS), n_other=len(DISTRACTORS), colours=", ".join(COLOURS), shapes=", ".join(SHAPES)),
        encoding="utf-8", newline="\n")
    print(f"{out}: {len(corpus)} corpus items, {len(queries)} queries, {len(qrels)} judgments, {len(images)} images, "
          f"{len(speech)} audio clips")


README = """# quality-demo

A small, fully synthetic multimodal retrieval set in the BEIR layout (`corpus.jsonl`, `queries.jsonl`,
`qrels/test.tsv`, `images/`, `audio/`), generated by `tools/datasets/make_quality_demo.py`. Do not edit it by
hand; regenerate it (byte-identical output with the same espeak-ng; it needs the espeak-ng and ffmpeg commands) with

    /usr/bin/python3 tools/datasets/make_quality_demo.py datasets/quality-demo

## Contents ({n_corpus} corpus items, {n_queries} queries, {n_qrels} judgments, {n_images} PNG images, {n_audio} FLAC clips)

- `shape-<colour>-<shape>-<0|1>`: image-only pictures of one coloured shape, two renderings per pair, at
  varied sizes (56 to 112 pixels a side, some non-square) and positions, on white, grey, cream, faint-grid or
  speckled backgrounds. Colours: {colours}. Shapes: {shapes}.
- `text-<colour>-<shape>`: one sentence describing that pair ("A red circle sits in the middle of a white page.").
- `scan-<slug>`: image-only "scanned documents", {n_docs} short phrases ("invoice total 42 euros") drawn with
  PIL's default bitmap font and scaled x2 nearest-neighbour; `note-<slug>`: a passage about the same document.
- `speech-<slug>`: audio-only documents, the same phrase read aloud by espeak-ng (16 kHz mono FLAC).
- `other-NN`: {n_other} distractor passages on unrelated topics (no colours, shapes or document topics).
- Queries: natural-language text ("a red circle", "a document about thermodynamics"), plus five image queries
  (`images/query-*.png`, a further rendering of a shape; two also carry a generic text) and three spoken
  queries (`audio/query-*.flac`, a document query read aloud).

## Judgments

Derived from the known attributes, never by hand: for a colour-and-shape query (text or image) the two
pictures and the sentence of that pair score 2 and those of the same colour with another shape score 1; a
colour-only or shape-only query scores 2 for everything of that colour or shape. A document query scores 2
for the scan, note and speech of the documents it asks about and 1 for related documents (another invoice, another
physics text, another food document). Every query has at least one relevant item; many items are judged for
several queries.

Scores of a model with random weights on this set are meaningless: it exercises the evaluation plumbing
(loading, embedding text, images and audio, ranking, trec_eval metrics). A real model should score well on it.
"""

if __name__ == "__main__":
    main()
