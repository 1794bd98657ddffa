#!/usr/bin/env python3
"""Encoder throughput: sentence-transformers (PyTorch, CPU) against `tessera bench encoder`, same texts and threads.

Texts are `title + " " + text` of the first LIMIT documents of a BEIR corpus.jsonl, truncated to 256 tokens
(specials included). Both sides count the same tokens: the model tokenizer's ids after truncation.
Prints one table (tokens/s for each, and the ratio); --json prints it as JSON.
Usage: encoder_peers.py --tessera PATH [--corpus PATH] [--limit N] [--threads N] [--batch-size N] [--model DIR]
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_texts(corpus, limit):
    texts = []
    with open(corpus) as f:
        for line in f:
            d = json.loads(line)
            texts.append((d.get('title', '') + ' ' + d.get('text', '')).strip())
            if len(texts) >= limit:
                break
    return texts


def run_torch(model_dir, texts, threads, batch_size, max_tokens):
    import torch
    from sentence_transformers import SentenceTransformer
    torch.set_num_threads(threads)
    model = SentenceTransformer(model_dir, device='cpu')
    model.max_seq_length = max_tokens
    token_count = sum(len(ids) for ids in model.tokenizer(texts, truncation=True, max_length=max_tokens)['input_ids'])
    model.encode(texts[:8], batch_size=batch_size)  # warm-up
    start = time.perf_counter()
    model.encode(texts, batch_size=batch_size, convert_to_numpy=True)
    seconds = time.perf_counter() - start
    return {'name': f'sentence-transformers {__import__("sentence_transformers").__version__} '
                    f'(torch {torch.__version__})',
            'documents': len(texts), 'tokens': token_count, 'seconds': seconds, 'tokens_per_second': token_count / seconds}


def run_tessera(binary, args):
    command = [binary, 'bench', 'encoder', '--corpus', args.corpus, '--limit', str(args.limit), '--threads',
               str(args.threads), '--batch-size', str(args.batch_size), '--model', args.model, '--json']
    result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    result['name'] = 'tessera'
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--tessera', default=os.path.join(ROOT, '.build', 'release', 'tessera'))
    parser.add_argument('--corpus', default=os.path.join(ROOT, '..', 'shared', 'ir-data', 'scifact', 'corpus.jsonl'))
    parser.add_argument('--limit', type=int, default=500)
    parser.add_argument('--threads', type=int, default=os.cpu_count())
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--model', default=os.path.join(ROOT, 'models', 'all-MiniLM-L6-v2'))
    parser.add_argument('--json', action='store_true')
    args = parser.parse_args()
    texts = load_texts(args.corpus, args.limit)
    rows = [run_tessera(args.tessera, args), run_torch(args.model, texts, args.threads, args.batch_size, 256)]
    ratio = rows[0]['tokens_per_second'] / rows[1]['tokens_per_second']
    if args.json:
        print(json.dumps({'threads': args.threads, 'batch_size': args.batch_size, 'results': rows,
                          'tessera_over_torch': ratio}, indent=2))
        return
    print(f'encoder throughput, {len(texts)} documents, {args.threads} threads, batch {args.batch_size}, max 256 tokens')
    print(f'{"engine":<58} {"tokens":>8} {"seconds":>8} {"tokens/s":>10}')
    for row in rows:
        print(f'{row["name"]:<58} {row["tokens"]:>8} {row["seconds"]:>8.2f} {row["tokens_per_second"]:>10.0f}')
    print(f'tessera / torch: {ratio:.2f}x')


if __name__ == '__main__':
    sys.exit(main())
