#!/usr/bin/env python3
"""Writes the encoder test fixtures into Tests/TesseraEncoderTests/Fixtures/.

1. tiny-bert.json: a hand-made BERT (2 layers, hidden 8, 2 heads, intermediate 16, a 24-token vocabulary) with
   its weights, a padded batch's reference last_hidden_state, and the `colbert` profile's expected query and
   document vectors (with a `linear.weight` 8 -> 4 projection, and a 1_Dense variant with a bias).
   Every weight is a multiple of 1/64 below 4 in magnitude, so F32, F16 and BF16 copies hold the same values and
   one reference covers all three.
2. minilm-parity.json + minilm-parity.f32: all-MiniLM-L6-v2 run by the numpy reference on texts of 1 to 250
   tokens in one padded batch. The .f32 file is the real tokens' last_hidden_state rows, float32 little-endian,
   sequences one after another ([sum of token counts, 384]); the JSON has the texts, token ids, truncation lengths
   and the mean-pooled L2-normalised vectors.

The reference math is /work/shared/tools/numpy_bert_ref.py (or $NUMPY_BERT_REF), imported by path.
Usage: scripts/make-encoder-fixtures.py [MODEL_DIR] [CORPUS_JSONL]
It creates its own virtual environment, .venv-fixtures/, on first run.
"""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, '.venv-fixtures')
PYTHON = os.path.join(VENV, 'bin', 'python')

if os.path.realpath(sys.prefix) != os.path.realpath(VENV):
    if not os.path.exists(PYTHON):
        subprocess.check_call([sys.executable, '-m', 'venv', VENV])
        subprocess.check_call([PYTHON, '-m', 'pip', 'install', '-q', 'numpy', 'scipy', 'tokenizers'])
    os.execv(PYTHON, [PYTHON, os.path.abspath(__file__)] + sys.argv[1:])

import importlib.util
import json
import string

import numpy as np

REF_PATH = os.environ.get('NUMPY_BERT_REF', os.path.join(ROOT, '..', 'shared', 'tools', 'numpy_bert_ref.py'))
if not os.path.exists(REF_PATH):
    REF_PATH = '/work/shared/tools/numpy_bert_ref.py'
spec = importlib.util.spec_from_file_location('numpy_bert_ref', REF_PATH)
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)

FIXTURES = os.path.join(ROOT, 'Tests', 'TesseraEncoderTests', 'Fixtures')

TINY_VOCAB = ['[PAD]', '[unused0]', '[unused1]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'the', 'cat', 'sat', 'on',
              'mat', 'dog', 'a', 'run', '##s', '##ning', '.', ',', '!', '?', 'big', 'red', 'hat']


def quantised(rng, shape, scale, offset=0.0):
    """Random weights rounded to multiples of 1/64, |w| < 4: exact in F32, F16 and BF16."""
    w = np.round((rng.standard_normal(shape) * scale + offset) * 64) / 64
    return np.clip(w, -3.984375, 3.984375).astype(np.float32)


def tiny_weights(rng, config):
    h, i, v = config['hidden_size'], config['intermediate_size'], config['vocab_size']
    w = {
        'embeddings.word_embeddings.weight': quantised(rng, (v, h), 0.8),
        'embeddings.position_embeddings.weight': quantised(rng, (config['max_position_embeddings'], h), 0.3),
        'embeddings.token_type_embeddings.weight': quantised(rng, (config['type_vocab_size'], h), 0.3),
        'embeddings.LayerNorm.weight': quantised(rng, (h,), 0.2, 1.0),
        'embeddings.LayerNorm.bias': quantised(rng, (h,), 0.1),
    }
    for layer in range(config['num_hidden_layers']):
        p = f'encoder.layer.{layer}.'
        for name, shape in [('attention.self.query', (h, h)), ('attention.self.key', (h, h)),
                            ('attention.self.value', (h, h)), ('attention.output.dense', (h, h)),
                            ('intermediate.dense', (i, h)), ('output.dense', (h, i))]:
            w[p + name + '.weight'] = quantised(rng, shape, 0.5)
            w[p + name + '.bias'] = quantised(rng, (shape[0],), 0.2)
        for name in ['attention.output.LayerNorm', 'output.LayerNorm']:
            w[p + name + '.weight'] = quantised(rng, (h,), 0.2, 1.0)
            w[p + name + '.bias'] = quantised(rng, (h,), 0.1)
    return w


def forward(weights, config, sequences, attend_all=False):
    """Runs the numpy reference on one padded batch; returns each sequence's real rows."""
    t = max(len(s) for s in sequences)
    ids = np.array([s + [0] * (t - len(s)) for s in sequences])
    mask = np.array([[1] * len(s) + [0] * (t - len(s)) for s in sequences])
    out = ref.bert_forward(weights, ids, mask, config['num_hidden_layers'], config['num_attention_heads'])
    return [out[k, :len(s)].astype(np.float32) for k, s in enumerate(sequences)]


def normalised(rows):
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


def tiny_fixture():
    from tokenizers.implementations import BertWordPieceTokenizer
    rng = np.random.default_rng(20240611)
    config = {'architectures': ['BertModel'], 'model_type': 'bert', 'hidden_act': 'gelu', 'hidden_size': 8,
              'intermediate_size': 16, 'num_attention_heads': 2, 'num_hidden_layers': 2, 'layer_norm_eps': 1e-12,
              'max_position_embeddings': 40, 'type_vocab_size': 2, 'vocab_size': len(TINY_VOCAB),
              'position_embedding_type': 'absolute'}
    weights = tiny_weights(rng, config)
    vocab = {token: k for k, token in enumerate(TINY_VOCAB)}
    tokenizer = BertWordPieceTokenizer(vocab, lowercase=True)

    # A padded batch of different lengths, in no particular order.
    batch = [[4, 7, 8, 9, 10, 7, 11, 17, 5], [4, 12, 5], [4, 21, 22, 23, 15, 19, 14, 16, 13, 8, 20, 5], [4],
             [4, 8, 18, 12, 5]]
    hidden = forward(weights, config, batch)

    # The colbert profile.
    linear = quantised(rng, (4, 8), 0.5)
    dense_bias = quantised(rng, (4,), 0.2)
    query_length = 32
    query_text = 'The big dog runs?'
    document_text = 'The cat sat, on the red mat! A dog.'
    q_ids = tokenizer.encode(query_text).ids
    d_ids = tokenizer.encode(document_text).ids
    q_seq = [q_ids[0], vocab['[unused0]']] + q_ids[1:]
    q_seq = q_seq + [vocab['[MASK]']] * (query_length - len(q_seq))
    d_seq = [d_ids[0], vocab['[unused1]']] + d_ids[1:]
    # Every query token, [MASK] padding included, is attended.
    q_hidden = forward(weights, config, [q_seq])[0]
    d_hidden = forward(weights, config, [d_seq])[0]
    keep = [k for k, i in enumerate(d_seq) if not (len(TINY_VOCAB[i]) == 1 and TINY_VOCAB[i] in string.punctuation)]
    colbert = {
        'query_text': query_text, 'document_text': document_text, 'query_length': query_length,
        'query_ids': q_seq, 'document_ids': d_seq, 'document_kept_ids': [d_seq[k] for k in keep],
        'linear_weight': linear.ravel().tolist(), 'dense_bias': dense_bias.ravel().tolist(),
        'query_vectors': normalised(q_hidden @ linear.T).ravel().tolist(),
        'document_vectors': normalised(d_hidden[keep] @ linear.T).ravel().tolist(),
        'query_vectors_dense_bias': normalised(q_hidden @ linear.T + dense_bias).ravel().tolist(),
        'document_vectors_dense_bias': normalised(d_hidden[keep] @ linear.T + dense_bias).ravel().tolist(),
        'document_pooled': normalised(d_hidden.mean(0)).tolist(),
    }
    plain_text = 'The cat sat on the mat.'
    p_ids = tokenizer.encode(plain_text).ids
    p_hidden = forward(weights, config, [p_ids])[0]
    plain = {'text': plain_text, 'ids': p_ids, 'token_vectors': normalised(p_hidden).ravel().tolist(),
             'pooled': normalised(p_hidden.mean(0)).tolist()}
    fixture = {
        'config': config, 'vocabulary': TINY_VOCAB,
        'tensors': {name: {'shape': list(w.shape), 'values': w.ravel().tolist()} for name, w in weights.items()},
        'batch': batch, 'last_hidden_state': [h.ravel().tolist() for h in hidden],
        'plain': plain, 'colbert': colbert,
    }
    with open(os.path.join(FIXTURES, 'tiny-bert.json'), 'w') as f:
        json.dump(fixture, f, separators=(',', ':'))
    print('tiny-bert.json written')


PARITY_LENGTHS = [3, 5, 8, 12, 16, 24, 32, 40, 48, 64, 96, 250]


def parity_fixture(model_dir, corpus):
    from tokenizers import Tokenizer
    config = json.load(open(os.path.join(model_dir, 'config.json')))
    weights = ref.load_safetensors(os.path.join(model_dir, 'model.safetensors'))
    tokenizer = Tokenizer.from_file(os.path.join(model_dir, 'tokenizer.json'))
    tokenizer.no_padding()
    documents = []
    with open(corpus) as f:
        for line in f:
            d = json.loads(line)
            documents.append((d['title'] + ' ' + d['text']).strip())
            if len(documents) >= 40:
                break
    texts, lengths, sequences = [], [], []
    used = 0
    for target in PARITY_LENGTHS:
        # The next document at least `target` tokens long, truncated to `target` tokens (specials included).
        while len(tokenizer.encode(documents[used]).ids) < target:
            used += 1
        tokenizer.enable_truncation(max_length=target)
        ids = tokenizer.encode(documents[used]).ids
        tokenizer.no_truncation()
        texts.append(documents[used])
        lengths.append(target)
        sequences.append(ids)
        used += 1
    # A one-token sequence ([CLS] alone) and a short text with accents and punctuation.
    extra = 'Naïve café résumé — Ünïcödé & punctuation!!! 12,345.67'
    texts.append(extra)
    lengths.append(None)
    sequences.append(tokenizer.encode(extra).ids)
    sequences_with_cls = sequences + [[sequences[0][0]]]
    hidden = forward(weights, config, sequences_with_cls)
    pooled = [normalised(h.mean(0)).tolist() for h in hidden]
    rows = np.concatenate(hidden).astype('<f4')
    rows.tofile(os.path.join(FIXTURES, 'minilm-parity.f32'))
    meta = {'model': 'sentence-transformers/all-MiniLM-L6-v2', 'hidden_size': config['hidden_size'],
            'texts': texts, 'max_lengths': lengths, 'ids': sequences_with_cls,
            'token_counts': [len(s) for s in sequences_with_cls], 'pooled': pooled}
    with open(os.path.join(FIXTURES, 'minilm-parity.json'), 'w') as f:
        json.dump(meta, f, separators=(',', ':'))
    print(f'minilm-parity: {len(sequences_with_cls)} sequences, {rows.shape[0]} tokens, {rows.nbytes} bytes')


if __name__ == '__main__':
    os.makedirs(FIXTURES, exist_ok=True)
    model_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, 'models', 'all-MiniLM-L6-v2')
    corpus = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, '..', 'shared', 'ir-data', 'scifact',
                                                                'corpus.jsonl')
    tiny_fixture()
    if os.path.exists(os.path.join(model_dir, 'model.safetensors')):
        parity_fixture(model_dir, corpus)
    else:
        print(f'{model_dir} has no model.safetensors: parity fixture not regenerated')
