/**
 * The checkpoint against config.json (docs/reliability.md): missing, unknown and reshaped tensors
 * and absurd config values are refused before any analysis with one line naming the tensor or the
 * key, and nothing is written; tensors mlx-lm drops are dropped with a warning.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { CONFIG_LIMITS } from '../src/arch/config.js';
import { llama } from '../src/arch/llama.js';
import { qwen2 } from '../src/arch/qwen2.js';
import { qwen3 } from '../src/arch/qwen3.js';
import { readSafetensorsHeader, readTensorBytes } from '../src/io/safetensors.js';
import { SafetensorsWriter } from '../src/io/safetensors-writer.js';
import { runPython, venvPython } from '../src/python.js';
import { copyModel, rewriteHeader, swan } from './helpers/cli.js';
import { FIXTURES, PY, STORIES, tempDir } from './helpers/paths.js';

const tmp = tempDir('swan-check-');
after(() => tmp.cleanup());

let n = 0;
function damaged(edit: (dir: string) => void, from = STORIES): string {
  const dir = copyModel(from, join(tmp.dir, `m-${n++}`));
  edit(dir);
  return dir;
}

/** A tensor to write: bytes copied from the fixture, or given. */
interface Tensor {
  name: string;
  dtype: 'BF16' | 'F16' | 'F32';
  shape: number[];
  bytes: Uint8Array;
}

/** Rewrite model.safetensors from the edited list of its tensors (no gaps left in the data). */
function editTensors(dir: string, edit: (ts: Tensor[]) => Tensor[]): void {
  const file = join(dir, 'model.safetensors');
  const ts = edit(
    readSafetensorsHeader(file).tensors.map((t) => ({ name: t.name, dtype: t.dtype as Tensor['dtype'], shape: t.shape, bytes: new Uint8Array(readTensorBytes(t)) })),
  );
  const w = new SafetensorsWriter(file, ts.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, byteLength: t.bytes.byteLength })), { format: 'pt' });
  for (const t of ts) w.write(t.name, t.bytes);
  w.close();
}

function editConfig(dir: string, edit: (c: Record<string, unknown>) => void): void {
  const c = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  edit(c);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(c, null, 2));
}

/** Replace one line of config.json's text (to write lexemes JSON.stringify would not: 1e9, 64.0). */
function editConfigText(dir: string, from: RegExp, to: string): void {
  const p = join(dir, 'config.json');
  const text = readFileSync(p, 'utf8');
  assert.match(text, from);
  writeFileSync(p, text.replace(from, to));
}

/** Both analyze and quantize (uniform: no analysis) refuse with one line; nothing is written. */
function expectRefused(dir: string, where: RegExp, problem: RegExp): string {
  let line = '';
  for (const args of [['quantize', dir, '--uniform'], ['analyze', dir]]) {
    const out = join(tmp.dir, `out-${n++}`);
    const r = swan([...args, '--quiet', ...(args[0] === 'quantize' ? ['-o', out] : ['-o', `${out}.json`])]);
    assert.notEqual(r.status, 0, `${args.join(' ')} should fail`);
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, `expected one line, got:\n${r.stderr}`);
    line = lines[0]!;
    assert.match(line, /^swan: error: /);
    assert.match(line, where);
    assert.match(line, problem);
    assert.equal(existsSync(out), false, 'no output directory');
    assert.equal(existsSync(`${out}.json`), false, 'no manifest');
    assert.deepEqual(readdirSync(tmp.dir).filter((f) => f.includes('swan-tmp')), [], 'no temporary sibling left');
  }
  return line;
}

const CONFIG = /config\.json: /;
const ST = /model\.safetensors: /;

describe('checkpoint vs config: tensors', () => {
  test('a missing tensor is named', () => {
    const dir = damaged((d) => editTensors(d, (ts) => ts.filter((t) => t.name !== 'model.layers.2.mlp.up_proj.weight')));
    expectRefused(dir, new RegExp(`${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `), /tensor model\.layers\.2\.mlp\.up_proj\.weight is missing/);
  });

  test('a missing lm_head of an untied model is named, with the config key that asks for it', () => {
    const dir = damaged((d) => editTensors(d, (ts) => ts.filter((t) => t.name !== 'lm_head.weight')), join(FIXTURES, 'stories260K-f32-untied'));
    expectRefused(dir, /./, /tensor lm_head\.weight is missing.*tie_word_embeddings is false/);
  });

  test('a renamed tensor: missing, with the unknown name beside it', () => {
    const dir = damaged((d) =>
      rewriteHeader(join(d, 'model.safetensors'), (h) => {
        h['model.layers.0.mlp.up.weight'] = h['model.layers.0.mlp.up_proj.weight'];
        delete h['model.layers.0.mlp.up_proj.weight'];
      }),
    );
    expectRefused(dir, /./, /tensor model\.layers\.0\.mlp\.up_proj\.weight is missing.*model\.layers\.0\.mlp\.up\.weight.*1 missing tensor, 1 unknown tensor/);
  });

  test('a wrong shape is named with the shape config.json gives and how', () => {
    // Same bytes, another shape: [32, 128] instead of [num_attention_heads×head_dim, hidden_size] = [64, 64].
    const dir = damaged((d) => rewriteHeader(join(d, 'model.safetensors'), (h) => void (h['model.layers.1.self_attn.q_proj.weight'].shape = [32, 128])));
    expectRefused(dir, ST, /tensor model\.layers\.1\.self_attn\.q_proj\.weight has shape \[32, 128\], but config\.json gives \[64, 64\] = \[num_attention_heads×head_dim, hidden_size\]/);
  });

  test('a config that disagrees with the checkpoint: every tensor of the wrong width', () => {
    const dir = damaged((d) => editConfig(d, (c) => (c.intermediate_size = 176)));
    expectRefused(dir, ST, /tensor model\.layers\.0\.mlp\.\w+_proj\.weight has shape \[(172, 64|64, 172)\], but config\.json gives \[(176, 64|64, 176)\].*in all: 15 tensors of the wrong shape/);
  });

  test('an unknown tensor is named', () => {
    const dir = damaged((d) =>
      editTensors(d, (ts) => [...ts, { name: 'model.layers.0.self_attn.extra_scale', dtype: 'BF16', shape: [64], bytes: new Uint8Array(128) }]),
    );
    expectRefused(dir, ST, /tensor model\.layers\.0\.self_attn\.extra_scale is not a parameter of the llama model config\.json describes/);
  });

  test('a layer beyond num_hidden_layers is unknown', () => {
    const dir = damaged((d) => editConfig(d, (c) => (c.num_hidden_layers = 4)));
    expectRefused(dir, ST, /tensor model\.layers\.4\.\S+ is not a parameter.*9 unknown tensors/);
  });

  test('biases the config does not ask for are unknown; with attention_bias/mlp_bias they are expected', () => {
    const withBias = (d: string) =>
      editTensors(d, (ts) => [...ts, { name: 'model.layers.0.self_attn.q_proj.bias', dtype: 'BF16', shape: [64], bytes: new Uint8Array(128) }]);
    expectRefused(damaged(withBias), ST, /tensor model\.layers\.0\.self_attn\.q_proj\.bias is not a parameter/);
    // attention_bias: q, k, v and o carry a bias in mlx-lm's llama; the other 19 are then missing.
    const dir = damaged((d) => {
      withBias(d);
      editConfig(d, (c) => (c.attention_bias = true));
    });
    expectRefused(dir, /./, /tensor model\.layers\.0\.self_attn\.k_proj\.bias is missing/);
    const mlp = damaged((d) => editConfig(d, (c) => (c.mlp_bias = true)));
    expectRefused(mlp, /./, /tensor model\.layers\.0\.mlp\.gate_proj\.bias is missing/);
  });
});

describe('checkpoint vs config: config values', () => {
  const cases: [string, (d: string) => void, RegExp][] = [
    ['num_hidden_layers 1e9', (d) => editConfigText(d, /"num_hidden_layers": 5/, '"num_hidden_layers": 1000000000'), /num_hidden_layers is 1000000000: above swan's limit of 1,000/],
    ['num_hidden_layers written 1e9 (a float to Python)', (d) => editConfigText(d, /"num_hidden_layers": 5/, '"num_hidden_layers": 1e9'), /num_hidden_layers is 1000000000\.0: written as a float/],
    ['negative hidden_size', (d) => editConfig(d, (c) => (c.hidden_size = -64)), /hidden_size is -64: must be a positive integer/],
    ['non-integer num_attention_heads', (d) => editConfig(d, (c) => (c.num_attention_heads = 2.5)), /num_attention_heads is 2\.5: not an integer/],
    ['num_attention_heads as a string', (d) => editConfig(d, (c) => (c.num_attention_heads = '8')), /num_attention_heads is "8": not an integer/],
    ['hidden_size written 64.0', (d) => editConfigText(d, /"hidden_size": 64/, '"hidden_size": 64.0'), /hidden_size is 64\.0: written as a float/],
    [
      'hidden_size not divisible by the heads when head_dim is absent',
      (d) =>
        editConfig(d, (c) => {
          delete c.head_dim;
          c.num_attention_heads = 12;
          c.num_key_value_heads = 4;
        }),
      /hidden_size is 64: not a multiple of num_attention_heads \(12\), and head_dim is not given/,
    ],
    ['num_key_value_heads that does not divide the heads', (d) => editConfig(d, (c) => (c.num_key_value_heads = 3)), /num_key_value_heads is 3: it must divide num_attention_heads \(8\)/],
    ['vocab_size above the limit', (d) => editConfig(d, (c) => (c.vocab_size = 2 ** 25)), /vocab_size is 33554432: above swan's limit of 16,777,216/],
    ['missing intermediate_size', (d) => editConfig(d, (c) => delete c.intermediate_size), /intermediate_size is missing/],
    ['rms_norm_eps negative', (d) => editConfig(d, (c) => (c.rms_norm_eps = -1)), /rms_norm_eps is -1: must be a finite number above 0/],
    ['tie_word_embeddings null', (d) => editConfig(d, (c) => (c.tie_word_embeddings = null)), /tie_word_embeddings is null: must be true or false/],
    ['attention_bias a string', (d) => editConfig(d, (c) => (c.attention_bias = 'no')), /attention_bias is "no": must be true or false/],
    ['layer_types of the wrong length', (d) => editConfig(d, (c) => (c.layer_types = ['full_attention'])), /layer_types must list one entry per layer/],
  ];
  for (const [label, edit, problem] of cases) {
    test(label, () => {
      expectRefused(damaged(edit), CONFIG, problem);
    });
  }
});

describe('checkpoint vs config: what still passes', () => {
  test('a tied model with an lm_head: written without it, with a warning naming it', () => {
    const dir = damaged((d) => editConfig(d, (c) => (c.tie_word_embeddings = true)), join(FIXTURES, 'stories260K-f32-untied'));
    const out = join(tmp.dir, 'tied-with-head');
    const r = swan(['quantize', dir, '-o', out, '--uniform', '--quiet']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /^swan: warning: lm_head\.weight: not written: tie_word_embeddings is true/);
    const index = JSON.parse(readFileSync(join(out, 'model.safetensors.index.json'), 'utf8'));
    assert.equal(index.weight_map['lm_head.weight'], undefined);
  });

  test('the real fixtures pass without warnings', () => {
    for (const f of ['stories260K', 'stories260K-f16', 'stories260K-f32', 'stories260K-f32-untied']) {
      const r = swan(['quantize', join(FIXTURES, f), '--uniform', '--dry-run', '--quiet']);
      assert.equal(r.status, 0, `${f}: ${r.stderr}`);
      assert.equal(r.stderr, '', f);
    }
  });

  test('expected tensors follow mlx-lm: qwen2 q/k/v biases and head_dim = hidden/heads, qwen3 q_norm/k_norm, llama head_dim', () => {
    const base = { hidden_size: 64, num_hidden_layers: 1, intermediate_size: 96, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 100, rms_norm_eps: 1e-6 };
    const q2 = qwen2.expectedTensors({ ...base, model_type: 'qwen2', head_dim: 32 }, true);
    assert.deepEqual(q2.get('model.layers.0.self_attn.q_proj.weight')!.shape, [64, 64], 'qwen2 ignores head_dim');
    assert.deepEqual(q2.get('model.layers.0.self_attn.k_proj.bias')!.shape, [32]);
    assert.equal(q2.has('model.layers.0.self_attn.o_proj.bias'), false);
    assert.equal(q2.has('lm_head.weight'), false);
    const q3 = qwen3.expectedTensors({ ...base, model_type: 'qwen3', head_dim: 32, max_position_embeddings: 512 }, false);
    assert.deepEqual(q3.get('model.layers.0.self_attn.q_proj.weight')!.shape, [128, 64]);
    assert.deepEqual(q3.get('model.layers.0.self_attn.o_proj.weight')!.shape, [64, 128]);
    assert.deepEqual(q3.get('model.layers.0.self_attn.k_norm.weight')!.shape, [32]);
    assert.deepEqual(q3.get('lm_head.weight')!.shape, [100, 64]);
    assert.throws(() => qwen3.expectedTensors({ ...base, model_type: 'qwen3', max_position_embeddings: 512 }, true), /head_dim is missing/);
    assert.throws(() => qwen3.expectedTensors({ ...base, model_type: 'qwen3', head_dim: 32 }, true), /max_position_embeddings is missing/);
    const { num_key_value_heads: _kv, ...noKv } = base;
    assert.deepEqual(llama.expectedTensors({ ...noKv, model_type: 'llama' }, true).get('model.layers.0.self_attn.v_proj.weight')!.shape, [64, 64], 'kv heads default to the heads');
    assert.throws(() => qwen2.expectedTensors({ ...noKv, model_type: 'qwen2' }, true), /num_key_value_heads is missing/);
    assert.equal(llama.expectedTensors({ ...base, model_type: 'llama' }, true).size, 1 + 9 + 1);
    assert.equal(CONFIG_LIMITS.layers, 1000);
  });
});

describe('checkpoint vs config: mlx-lm agrees', { skip: process.env.SWAN_SKIP_PYTHON ? 'SWAN_SKIP_PYTHON is set' : false }, () => {
  test('a llama with attention_bias and mlp_bias: the biases swan expects are the ones mlx-lm loads', () => {
    venvPython();
    const dir = damaged((d) => {
      editConfig(d, (c) => {
        c.attention_bias = true;
        c.mlp_bias = true;
      });
      editTensors(d, (ts) => {
        const out: Tensor[] = [];
        for (const t of ts) {
          out.push(t);
          const m = /^(model\.layers\.\d+\.(self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj))\.weight$/.exec(t.name);
          if (m) out.push({ name: `${m[1]}.bias`, dtype: t.dtype, shape: [t.shape[0]!], bytes: new Uint8Array(2 * t.shape[0]!) });
        }
        return out;
      });
    });
    const out = join(tmp.dir, 'biased');
    const r = swan(['quantize', dir, '-o', out, '--quiet', '--uniform']);
    assert.equal(r.status, 0, r.stderr);
    const gen = JSON.parse(runPython(join(PY, 'load_generate.py'), [out, 'Once upon a time', '4']));
    assert.equal(typeof gen.text, 'string');
  });
});
