#!/usr/bin/env python3
"""Writes Tests/TesseraEncoderTests/Fixtures/tokenizer-cases.json: token ids, tokens and UTF-8 byte offsets
from the Hugging Face `tokenizers` library for several hundred test strings, using the tokenizer.json of a
model folder (default: models/all-MiniLM-L6-v2).

Run it through its own virtual environment (created on first use):
    scripts/make-tokenizer-fixture.py [MODEL_DIR]
"""
import json
import os
import random
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, ".venv-fixtures")


def ensure_venv():
    python = os.path.join(VENV, "bin", "python")
    if sys.executable != python:
        if not os.path.exists(python):
            subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
            subprocess.run([python, "-m", "pip", "install", "--quiet", "tokenizers", "numpy", "safetensors"],
                           check=True)
        os.execv(python, [python] + sys.argv)


HAND_WRITTEN = [
    "", " ", "   ", "\t\n\r", "\u3000\u00a0\u2009", "hello", "Hello, World!", "HELLO WORLD",
    "late interaction retrieval", "ColBERT scores every query token against every document token.",
    "MaxSim: Σ_i max_j q_i·d_j", "naïve café résumé", "Ünïcödé Àccénts ÇÃÕ", "Crème brûlée à la carte",
    "Ångström, Øresund, Ærø", "straße", "İstanbul ıi", "ΑΒΓ δέλτα Ωμέγα", "Москва, Россия", "Привет, мир!",
    "東京は日本の首都です", "北京欢迎你", "中文和English混合", "한국어 텍스트입니다", "日本語のテキスト、カタカナ。",
    "ひらがな カタカナ 漢字", "𠀀𠀁 rare ideographs 𪜀", "emoji 😀 test", "👍🏽 thumbs", "👨‍👩‍👧‍👦 family",
    "🇫🇷 flag", "❤️ heart", "a\u200db", "soft\u00adhyphen", "zero\u200bwidth", "bom\ufeffstart", "ctrl\x01\x02\x7f",
    "nul\x00byte", "replacement\ufffdchar", "private\ue000use", "!!!", "?!?!", "...", "---", "—–-", "«quotes»",
    "“curly” ‘single’", "(parens) [brackets] {braces}", "a+b=c", "x^2 + y^2 = z^2", "$100 €50 £20 ¥1000",
    "50% off", "C++ and C#", "user@example.com", "https://example.com/path?q=1&r=2#frag", "file_name.txt",
    "snake_case_identifier", "camelCaseIdentifier", "kebab-case-word", "12,345.67", "1.000.000", "3/4", "1e-10",
    "0.5", "-42", "+7", "1st 2nd 3rd 4th", "2026-11-24T15:33:00Z", "+1 (555) 123-4567", "IPv4 192.168.0.1",
    "a" * 99, "b" * 100, "c" * 101, "d" * 250, "supercalifragilisticexpialidocious", "antidisestablishmentarianism",
    "pneumonoultramicroscopicsilicovolcanoconiosis", "العربية نص", "עברית טקסט", "हिन्दी पाठ", "ภาษาไทย",
    "Tiếng Việt có dấu", "Ελληνικά", "ქართული", "Հայերեն", "ᚠᚢᚦ runes", "∀x∈ℝ: x²≥0", "∑∫∂√∞≈≠≤≥",
    "½ ¼ ¾", "①②③", "ＦＵＬＬＷＩＤＴＨ", "ｈａｌｆ　ｗｉｄｔｈ", "ﬁ ligature ﬂ", "Ⅻ roman", "™ © ®",
    "e\u0301 combining", "a\u0308\u0304 stacked", "\u0301leading mark", "Zalgo z\u0336a\u0337l\u0338g\u0334o",
    "[CLS] literal", "text [MASK] inside", "[SEP][SEP]", "[UNK]", "[PAD] padded", "[mask] lowercase", "[MASK]x",
    "tabs\tand\nnewlines\r\nmixed", "multiple     spaces", " leading and trailing ", "x" * 5 + " " + "y" * 120,
    "word-with-hyphens and apostrophes' don't", "O'Neill's", "rock'n'roll", "email:test@test.org;",
    "SciFact: 0-dimensional biomaterials show inductive properties.", "BRCA1 p53 IL-6 TNF-α",
    "CO2 H2O NaCl", "β-catenin and γ-secretase", "COVID-19 SARS-CoV-2", "mRNA vaccines", "the 5' UTR",
]

WORDS = ["the", "retrieval", "token", "Vector", "naïve", "東京", "😀", "12,345", "don't", "—", "α", "İ",
         "ß", "Ωmega", "e\u0301", "[MASK]", "x" * 30, "ﬁ", "¼", "\t", "...", "C++", "U.S.A.", "o'clock"]


def generated(count, rng):
    out = []
    for _ in range(count):
        out.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12))))
    return out


def long_texts(rng, count):
    base = ("Late interaction models encode queries and documents into bags of token embeddings, and the "
            "MaxSim operator sums, over query tokens, the best match among document tokens. ")
    return [(base * rng.randint(3, 8)) + " ".join(rng.choice(WORDS) for _ in range(40)) for _ in range(count)]


def byte_offsets(text, offsets):
    """HF gives offsets in code points; convert to UTF-8 byte offsets."""
    prefix = [0]
    for ch in text:
        prefix.append(prefix[-1] + len(ch.encode("utf-8")))
    return [[prefix[a], prefix[b]] for a, b in offsets]


def main():
    ensure_venv()
    from tokenizers import Tokenizer

    model = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "models", "all-MiniLM-L6-v2")
    tok = Tokenizer.from_file(os.path.join(model, "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    rng = random.Random(20261124)
    texts = HAND_WRITTEN + generated(190, rng) + long_texts(rng, 12)
    cases = []
    for index, text in enumerate(texts):
        enc = tok.encode(text)
        specials = set(i for i, m in enumerate(enc.special_tokens_mask) if m)
        case = {
            "text": text,
            "ids": enc.ids,
            "tokens": enc.tokens,
            "offsets": [None if i in specials and enc.offsets[i] == (0, 0) else o
                        for i, o in enumerate(byte_offsets(text, enc.offsets))],
        }
        if index % 7 == 0:
            tok.enable_truncation(max_length=16)
            case["ids_max16"] = tok.encode(text).ids
            tok.no_truncation()
        cases.append(case)
    out = os.path.join(ROOT, "Tests", "TesseraEncoderTests", "Fixtures", "tokenizer-cases.json")
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"model": os.path.basename(model.rstrip("/")), "cases": cases}, f, ensure_ascii=False)
    print(f"wrote {len(cases)} cases to {out}")


if __name__ == "__main__":
    main()
