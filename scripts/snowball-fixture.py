#!/usr/bin/env python3
"""Writes Tests/TesseraTests/Fixtures/snowball-english.tsv: words of the BEIR corpora under ../shared/ir-data with
their Snowball English stems (the Rust `rust-stemmers` crate, through `py-rust-stemmers`) and their token
dimensions (|MurmurHash3_32(word, seed 0)| as a signed integer, through `mmh3`).
Usage: pip install py-rust-stemmers==0.1.8 mmh3==5.3.1, then scripts/snowball-fixture.py"""
import json
import pathlib
import random
import re

import mmh3
import py_rust_stemmers

root = pathlib.Path(__file__).resolve().parent.parent
data = root.parent / "shared" / "ir-data"
words = set()
for name in ("scifact", "cranfield", "cisi"):
    with open(data / name / "corpus.jsonl", encoding="utf-8") as corpus:
        for line in corpus:
            document = json.loads(line)
            text = (document.get("title", "") + " " + document.get("text", "")).lower()
            words.update(w for w in re.split(r"[\W_]+", text) if w)
words = sorted(words)
random.seed(7)
chosen = set(random.sample(words, 3000))
# Every exception, the prefixes with fixed regions, y handling and short words.
chosen.update(["skis", "skies", "dying", "lying", "tying", "idly", "gently", "ugly", "early", "only", "singly",
               "sky", "news", "howe", "atlas", "cosmos", "bias", "andes", "inning", "outings", "cannings",
               "proceed", "exceeding", "succeeded", "generously", "communication", "arsenal", "yes", "say",
               "cry", "by", "ties", "cries", "gas", "gaps", "kiwis", "hoping", "hopping", "feed", "agreed",
               "happy", "enjoying", "toy", "ow", "at", "a", "is"])
chosen.update(w for w in words if not w.isascii())
stemmer = py_rust_stemmers.SnowballStemmer("english")
out = root / "Tests" / "TesseraTests" / "Fixtures" / "snowball-english.tsv"
with open(out, "w", encoding="utf-8") as fixture:
    for word in sorted(chosen):
        fixture.write(f"{word}\t{stemmer.stem_word(word)}\t{abs(mmh3.hash(word))}\n")
print(f"{out}: {len(chosen)} words")
