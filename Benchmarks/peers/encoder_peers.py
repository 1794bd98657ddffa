#!/usr/bin/env python3
"""Encoder throughput and agreement: Tessera (`tessera bench encoder --precision f32|bf16|int8`; bf16 only on
CPUs with AVX512_BF16), ONNX Runtime (float32 and dynamic int8) and sentence-transformers (PyTorch, CPU), on the same
texts and threads, in one run, one table.

Texts are `title + " " + text` of the first LIMIT documents of a BEIR corpus.jsonl, truncated to 256 tokens
(specials included). Every engine counts the same tokens: the model tokenizer's ids after truncation. Batches
are `--batch-size` documents sorted by length (Tessera packs a batch without padding; ONNX Runtime and
sentence-transformers pad it to its longest document). Time covers tokenisation, the forward pass and the
normalisation, after a warm-up.

The ONNX model is exported here from the local safetensors (`torch.onnx.export`, opset 17, dynamic batch and
sequence axes) into Benchmarks/peers/.onnx/, and quantised with `onnxruntime.quantization.quantize_dynamic`
(QInt8 weights, FastEmbed's recipe); nothing is downloaded. For each engine but float32 the table reports the
cosine of every L2-normalised token vector to the same engine family's float32 (min, p1, mean).
Usage: encoder_peers.py --tessera PATH [--corpus PATH] [--limit N] [--threads N] [--batch-size N] [--model DIR]
       [--repeats N] [--json]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MAX_TOKENS = 256


def load_texts(corpus, limit):
    texts = []
    with open(corpus) as f:
        for line in f:
            d = json.loads(line)
            texts.append((d.get('title', '') + ' ' + d.get('text', '')).strip())
            if len(texts) >= limit:
                break
    return texts


def agreement(vectors, reference):
    """min, p1 and mean cosine between matching L2-normalised token vectors (lists of [tokens, dim] arrays)."""
    cosines = np.concatenate([np.sum(a * b, axis=1) for a, b in zip(vectors, reference)])
    cosines.sort()
    return {'tokens': int(cosines.size), 'min': float(cosines[0]), 'p1': float(cosines[cosines.size // 100]),
            'mean': float(cosines.mean())}


def normalise(rows):
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def export_onnx(model_dir):
    """float32 and int8 ONNX files of the model, made once from the local safetensors."""
    folder = os.path.join(HERE, '.onnx')
    os.makedirs(folder, exist_ok=True)
    f32 = os.path.join(folder, 'model-f32.onnx')
    i8 = os.path.join(folder, 'model-int8.onnx')
    if not os.path.exists(f32):
        import torch
        from transformers import AutoModel
        model = AutoModel.from_pretrained(model_dir).eval()
        ids = torch.ones((2, 16), dtype=torch.long)
        mask = torch.ones((2, 16), dtype=torch.long)
        axes = {0: 'batch', 1: 'sequence'}
        kwargs = dict(input_names=['input_ids', 'attention_mask'], output_names=['last_hidden_state'],
                      dynamic_axes={'input_ids': axes, 'attention_mask': axes, 'last_hidden_state': axes},
                      opset_version=17)
        with torch.no_grad():
            try:
                torch.onnx.export(model, (ids, mask), f32, dynamo=False, **kwargs)
            except TypeError:
                torch.onnx.export(model, (ids, mask), f32, **kwargs)
    if not os.path.exists(i8):
        from onnxruntime.quantization import QuantType, quantize_dynamic
        quantize_dynamic(f32, i8, weight_type=QuantType.QInt8)
    return f32, i8


def batches(tokenizer, texts, batch_size):
    """Length-sorted batches of (positions, ids, mask), padded to each batch's longest."""
    encodings = tokenizer.encode_batch(texts)
    order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        longest = max(len(encodings[i].ids) for i in chunk)
        ids = np.zeros((len(chunk), longest), dtype=np.int64)
        mask = np.zeros((len(chunk), longest), dtype=np.int64)
        for row, i in enumerate(chunk):
            n = len(encodings[i].ids)
            ids[row, :n] = encodings[i].ids
            mask[row, :n] = 1
        yield chunk, ids, mask


def run_onnx(path, label, model_dir, texts, threads, batch_size):
    import onnxruntime as ort
    from tokenizers import Tokenizer
    tokenizer = Tokenizer.from_file(os.path.join(model_dir, 'tokenizer.json'))
    tokenizer.enable_truncation(MAX_TOKENS)
    tokenizer.no_padding()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])

    def encode(items):
        out = [None] * len(items)
        for chunk, ids, mask in batches(tokenizer, items, batch_size):
            hidden = session.run(None, {'input_ids': ids, 'attention_mask': mask})[0]
            for row, i in enumerate(chunk):
                out[i] = normalise(hidden[row, :int(mask[row].sum())])
        return out

    encode(texts[:8])
    start = time.perf_counter()
    vectors = encode(texts)
    seconds = time.perf_counter() - start
    tokens = sum(v.shape[0] for v in vectors)
    return {'name': f'ONNX Runtime {ort.__version__}, {label}', 'tokens': tokens, 'seconds': seconds,
            'tokens_per_second': tokens / seconds}, vectors


def run_torch(model_dir, texts, threads, batch_size):
    import torch
    from sentence_transformers import SentenceTransformer
    torch.set_num_threads(threads)
    model = SentenceTransformer(model_dir, device='cpu')
    model.max_seq_length = MAX_TOKENS
    tokens = sum(len(ids) for ids in model.tokenizer(texts, truncation=True, max_length=MAX_TOKENS)['input_ids'])
    model.encode(texts[:8], batch_size=batch_size)
    start = time.perf_counter()
    model.encode(texts, batch_size=batch_size, output_value='token_embeddings', convert_to_numpy=False)
    seconds = time.perf_counter() - start
    return {'name': f'sentence-transformers {__import__("sentence_transformers").__version__} '
                    f'(torch {torch.__version__})', 'tokens': tokens, 'seconds': seconds,
            'tokens_per_second': tokens / seconds}


def run_tessera(binary, args, precision):
    command = [binary, 'bench', 'encoder', '--corpus', args.corpus, '--limit', str(args.limit), '--threads',
               str(args.threads), '--batch-size', str(args.batch_size), '--model', args.model,
               '--precision', precision, '--json']
    result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    row = {'name': f'Tessera, {precision}', 'tokens': result['tokens'], 'seconds': result['seconds'],
           'tokens_per_second': result['tokens_per_second']}
    if result.get('cosine_to_f32'):
        row['cosine_to_f32'] = result['cosine_to_f32']
    return row


def cpu_has_bf16():
    """Whether this CPU reports AVX512_BF16 (what `tessera ... --precision bf16` needs)."""
    try:
        with open('/proc/cpuinfo') as f:
            return any(line.startswith('flags') and ' avx512_bf16' in line for line in f)
    except OSError:
        return False


def median_row(rows):
    """The repeat with the median throughput (its agreement figures are the same in every repeat)."""
    ordered = sorted(rows, key=lambda r: r['tokens_per_second'])
    row = dict(ordered[len(ordered) // 2])
    row['repeats'] = [round(r['tokens_per_second']) for r in rows]
    return row


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--tessera', default=os.path.join(ROOT, '.build', 'release', 'tessera'))
    parser.add_argument('--corpus', default=os.path.join(ROOT, '..', 'shared', 'ir-data', 'scifact', 'corpus.jsonl'))
    parser.add_argument('--limit', type=int, default=1000)
    parser.add_argument('--threads', type=int, default=os.cpu_count())
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--model', default=os.path.join(ROOT, 'models', 'all-MiniLM-L6-v2'))
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--skip-torch', action='store_true')
    parser.add_argument('--json', action='store_true')
    args = parser.parse_args()
    texts = load_texts(args.corpus, args.limit)
    f32_path, i8_path = export_onnx(args.model)
    samples = {}
    onnx_f32_vectors = None
    precisions = ('f32', 'bf16', 'int8') if cpu_has_bf16() else ('f32', 'int8')
    # Interleaved repeats, so drift on a shared machine touches every engine alike.
    for _ in range(args.repeats):
        for precision in precisions:
            samples.setdefault(f'tessera-{precision}', []).append(run_tessera(args.tessera, args, precision))
        row, vectors = run_onnx(f32_path, 'float32', args.model, texts, args.threads, args.batch_size)
        samples.setdefault('onnx-f32', []).append(row)
        onnx_f32_vectors = vectors
        row, vectors = run_onnx(i8_path, 'int8 (quantize_dynamic, QInt8)', args.model, texts, args.threads,
                                args.batch_size)
        row['cosine_to_f32'] = agreement(vectors, onnx_f32_vectors)
        samples.setdefault('onnx-int8', []).append(row)
        if not args.skip_torch:
            samples.setdefault('torch', []).append(run_torch(args.model, texts, args.threads, args.batch_size))
    rows = [median_row(samples[key]) for key in samples]
    base = rows[0]['tokens_per_second']
    by_key = {key: median_row(samples[key]) for key in samples}
    ratios = {'tessera_f32_over_onnx_f32': by_key['tessera-f32']['tokens_per_second']
              / by_key['onnx-f32']['tokens_per_second'],
              'tessera_int8_over_onnx_int8': by_key['tessera-int8']['tokens_per_second']
              / by_key['onnx-int8']['tokens_per_second'],
              'tessera_int8_over_tessera_f32': by_key['tessera-int8']['tokens_per_second'] / base}
    if 'tessera-bf16' in by_key:
        ratios['tessera_bf16_over_tessera_f32'] = by_key['tessera-bf16']['tokens_per_second'] / base
    if args.json:
        print(json.dumps({'documents': len(texts), 'threads': args.threads, 'batch_size': args.batch_size,
                          'results': rows, 'ratios': ratios}, indent=2))
        return
    print(f'encoder throughput, {len(texts)} documents, {args.threads} threads, batch {args.batch_size}, '
          f'max {MAX_TOKENS} tokens, median of {args.repeats}')
    print('| engine | tokens | tokens/s (median) | vs Tessera f32 | cosine to f32: min / p1 / mean |')
    print('|---|---:|---:|---:|---|')
    for row in rows:
        cos = row.get('cosine_to_f32')
        cosine = f'{cos["min"]:.4f} / {cos["p1"]:.4f} / {cos["mean"]:.5f}' if cos else '—'
        print(f'| {row["name"]} | {row["tokens"]} | {row["tokens_per_second"]:,.0f} | '
              f'{row["tokens_per_second"] / base:.2f} | {cosine} |')
    for name, value in ratios.items():
        print(f'{name}: {value:.2f}')


if __name__ == '__main__':
    sys.exit(main())
