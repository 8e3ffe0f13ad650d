import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { llama } from '../src/arch/llama.js';
import { qwen3 } from '../src/arch/qwen3.js';
import { formatBytes, formatLabel, fpFormat, outputTensors, parseFormats } from '../src/format.js';
import { eligibleFormats, measurableFormats } from '../src/plan/eligibility.js';
import { planTotals, quantizationConfig } from '../src/plan/plan.js';
import { classify, DEFAULT_SWAN_CONFIG, isOneD, recommendBits, swanDecision } from '../src/plan/swan-rules.js';
import { planThresholds } from '../src/plan/thresholds.js';
import { planUniform } from '../src/plan/uniform.js';

const C = DEFAULT_SWAN_CONFIG;

describe('SWAN decision rules (reference recommend_bits, paper thresholds)', () => {
  test('order and inclusive comparisons', () => {
    assert.deepEqual(recommendBits(0, 'protected', C), { bits: 16, reason: 'protected_pattern' });
    assert.equal(recommendBits(0.9, 'default', C).bits, 16);
    assert.equal(recommendBits(0.899, 'default', C).bits, 8);
    assert.equal(recommendBits(0.649, 'default', C).bits, 4);
    assert.equal(recommendBits(0.65, 'default', C).bits, 8);
    assert.equal(recommendBits(0.3, 'sensitive', C).bits, 8);
    assert.equal(recommendBits(0.95, 'sensitive', C).bits, 16);
    assert.equal(recommendBits(0.1, 'default', C).bits, 2);
    assert.equal(recommendBits(0.1, 'sensitive', C).bits, 8);
    assert.deepEqual(recommendBits(0.2, 'default', C), { bits: 4, reason: 'default' });
    assert.equal(recommendBits(0.7, 'default', C).reason, 'composite_score=0.700 >= 8bit_threshold');
  });
  test('classification is a case-insensitive substring match; router.weight but not mlp.gate', () => {
    assert.equal(classify('model.embed_tokens.weight', C), 'protected');
    assert.equal(classify('model.layers.0.INPUT_LAYERNORM.weight', C), 'protected');
    assert.equal(classify('model.layers.0.mlp.router.weight', C), 'protected');
    assert.equal(classify('model.layers.0.mlp.gate.weight', C), 'default');
    assert.equal(classify('x.q_proj.weight', { ...C, sensitivePatterns: ['q_proj'] }), 'sensitive');
  });
  test('1-D test of the reference: ndim ≤ 1 or a 2-D dim of 1', () => {
    assert.ok(isOneD([64]));
    assert.ok(isOneD([1, 4096]));
    assert.ok(!isOneD([2, 4096]));
  });
});

describe('formats and plans', () => {
  const rec = (name: string, shape: number[]) => llama.describe(name, shape, true);
  test('exact bytes: packed weight + scales + biases in the model dtype', () => {
    assert.equal(formatBytes({ kind: 'affine', bits: 4, groupSize: 64 }, [128, 256], 'BF16'), 128 * 256 / 2 + 2 * 128 * 4 * 2);
    assert.equal(formatBytes({ kind: 'affine', bits: 3, groupSize: 32 }, [10, 96], 'F32'), 10 * 96 * 3 / 8 + 2 * 10 * 3 * 4);
    assert.equal(formatBytes({ kind: 'float' }, [7, 9], 'F16'), 126);
    // fp modes: packed codes + one uint8 scale per group, no biases, whatever the dtype.
    assert.equal(formatBytes(fpFormat('mxfp4'), [128, 256], 'BF16'), (128 * 256) / 2 + 128 * 8);
    assert.equal(formatBytes(fpFormat('nvfp4'), [128, 256], 'F32'), (128 * 256) / 2 + 128 * 16);
    assert.equal(formatBytes(fpFormat('mxfp8'), [128, 256], 'F16'), 128 * 256 + 128 * 8);
    assert.deepEqual(outputTensors('a.weight', [4, 64], fpFormat('nvfp4'), 'BF16').map((t) => [t.name, t.dtype, t.shape.join('x')]), [
      ['a.weight', 'U32', '4x8'],
      ['a.scales', 'U8', '4x4'],
    ]);
    const outs = outputTensors('m.q_proj.weight', [8, 128], { kind: 'affine', bits: 6, groupSize: 32 }, 'F16');
    assert.deepEqual(outs.map((o) => [o.name, o.dtype, o.shape]), [
      ['m.q_proj.weight', 'U32', [8, 24]],
      ['m.q_proj.scales', 'F16', [8, 4]],
      ['m.q_proj.biases', 'F16', [8, 4]],
    ]);
  });
  test('thresholds: 8-bit g64, 2-bit g32, 4-bit at --q-group-size; non-dividing dims stay float', () => {
    const q = rec('model.layers.0.self_attn.q_proj.weight', [64, 128]);
    const one = (record: typeof q, shape: number[], bits: 2 | 4 | 8 | 16, groupSize: number) =>
      planThresholds([{ record, shape, decision: { bits, reason: 'r' } }], 'BF16', { groupSize, swan: C }).entries[0]!;
    assert.deepEqual(one(q, [64, 128], 8, 128).format, { kind: 'affine', bits: 8, groupSize: 64 });
    assert.deepEqual(one(q, [64, 128], 2, 128).format, { kind: 'affine', bits: 2, groupSize: 32 });
    assert.deepEqual(one(q, [64, 128], 4, 128).format, { kind: 'affine', bits: 4, groupSize: 128 });
    assert.equal(one(q, [64, 128], 4, 128).reason, 'r');
    const down = rec('model.layers.0.mlp.down_proj.weight', [64, 172]);
    const c = one(down, [64, 172], 4, 64);
    assert.equal(c.format.kind, 'float');
    assert.match(c.reason, /^no_group_divides: .*172/);
    const norm = rec('model.norm.weight', [64]);
    const u = planUniform([{ record: norm, shape: [64] }], 'BF16', { bits: 4, groupSize: 64 }).entries[0]!;
    assert.equal(u.format.kind, 'float');
    assert.equal(u.reason, 'not_quantizable');
  });
  test('config quantization: top level, then per-layer dicts only where different, in MLX module order', () => {
    const items = [
      ['model.layers.0.mlp.up_proj.weight', 8],
      ['model.layers.0.mlp.down_proj.weight', 2],
      ['model.layers.0.self_attn.q_proj.weight', 4],
      ['model.embed_tokens.weight', 16],
    ].map(([n, b]) => ({ record: rec(n as string, [64, 128]), shape: [64, 128], decision: { bits: b as 4, reason: '' } }));
    const plan = planThresholds(items, 'BF16', { groupSize: 64, swan: C });
    const q = quantizationConfig(plan, llama.orderKey);
    assert.deepEqual(Object.keys(q), ['group_size', 'bits', 'mode', 'model.layers.0.mlp.down_proj', 'model.layers.0.mlp.up_proj']);
    assert.deepEqual(q['model.layers.0.mlp.down_proj'], { group_size: 32, bits: 2, mode: 'affine' });
    const t = planTotals(plan);
    assert.equal(t.params, 4 * 64 * 128);
    assert.equal(t.bytes, plan.entries.reduce((s, e) => s + e.bytes, 0));
  });
});

describe('eligibility: one function decides which formats a tensor may take', () => {
  const rec = (name: string, shape: number[], tied = true) => llama.describe(name, shape, tied);
  const q = rec('model.layers.0.self_attn.q_proj.weight', [64, 128]);
  test('every MLX format (18 affine, 3 fp modes) the group sizes allow, before any rule', () => {
    assert.equal(measurableFormats(q, [64, 128]).length, 21);
    assert.deepEqual(measurableFormats(q, [64, 96]).map((f) => f.groupSize), [32, 32, 32, 32, 32, 32, 32, 16, 32]);
    assert.deepEqual(measurableFormats(q, [64, 48]).map((f) => f.kind === 'fp' && f.mode), ['nvfp4']);
    assert.deepEqual(measurableFormats(rec('model.norm.weight', [64]), [64]), []);
  });
  test('each rule fires in order and names itself', () => {
    const rule = (record: typeof q, shape: number[], rules = {}) => eligibleFormats(record, shape, rules).floatRule;
    assert.equal(rule(rec('lm_head.weight', [512, 64], true), [512, 64]), 'dropped_by_mlx');
    assert.equal(rule(rec('model.norm.weight', [64]), [64]), 'not_quantizable');
    assert.equal(rule(rec('model.layers.0.self_attn.q_proj.bias', [64]), [64]), 'not_quantizable');
    assert.equal(rule(q, [64, 128], { keepFloat: ['Q_PROJ'] }), 'user_protect');
    assert.equal(rule(rec('model.layers.0.self_attn.q_proj.weight', [1, 128]), [1, 128], { swanRules: C }), '1d_tensor');
    assert.equal(rule(rec('model.layers.0.self_attn.q_proj.weight', [4, 128]), [4, 128], { swanRules: C }), 'small_tensor');
    assert.equal(rule(rec('model.embed_tokens.weight', [512, 64]), [512, 64], { swanRules: C }), 'protected_pattern');
    assert.equal(rule(rec('model.embed_tokens.weight', [512, 64]), [512, 64]), undefined, 'without SWAN rules the embedding may be quantized');
    const odd = eligibleFormats(rec('model.layers.0.mlp.down_proj.weight', [64, 172]), [64, 172], {});
    assert.equal(odd.floatRule, 'no_group_divides');
    assert.match(odd.detail!, /172/);
  });
  test('--sensitive keeps only 8-bit formats', () => {
    const e = eligibleFormats(q, [64, 128], { atLeast8: ['q_proj'] });
    assert.deepEqual(e.formats.map((f) => `${f.bits}/${f.groupSize}`), ['8/32', '8/64', '8/128', '8/32']);
    assert.equal(e.formats[3]!.kind, 'fp', 'mxfp8 is an 8-bit format');
  });
  test('--formats keeps only the formats it names, in every strategy', () => {
    const e = eligibleFormats(q, [64, 128], { allowedFormats: parseFormats('4bit-g64,mxfp4') });
    assert.deepEqual(e.formats.map((f) => formatLabel(f, 'BF16')), ['4-bit g64', 'mxfp4']);
    const none = eligibleFormats(q, [64, 96], { allowedFormats: parseFormats('g64') });
    assert.equal(none.floatRule, 'no_group_divides');
    assert.match(none.detail!, /96 not divisible by 64/);
  });
  test('the SWAN decision: unscored rules, skipped metrics, composite', () => {
    assert.deepEqual(swanDecision({ classification: 'default', composite: 0, unscored: 'small_tensor' }, C), { bits: 16, reason: 'small_tensor' });
    assert.equal(swanDecision({ classification: 'default', composite: 0.7 }, C).bits, 8);
    const d = swanDecision({ classification: 'default', composite: NaN, compositeRange: { lo: 0.2, hi: 0.55 } }, C);
    assert.equal(d.bits, 4);
    assert.match(d.reason, /composite in \[0.200, 0.550\]/);
  });
  test('a plan entry records the rule that kept a tensor float', () => {
    const items = [
      { record: rec('model.embed_tokens.weight', [512, 64]), shape: [512, 64], decision: { bits: 4 as const, reason: 'default' } },
      { record: q, shape: [64, 128], decision: { bits: 4 as const, reason: 'default' } },
    ];
    const plan = planThresholds(items, 'BF16', { groupSize: 64, swan: C, keepFloat: ['q_proj'] });
    assert.deepEqual(plan.entries.map((e) => e.reason), ['protected_pattern', 'user_protect']);
  });
});

describe('architectures', () => {
  test('MLX parameter order: embed, layers (q,k,v,o,norms, gate, down, up, layer norms), norm, head', () => {
    const names = [
      'lm_head.weight',
      'model.norm.weight',
      'model.layers.10.mlp.up_proj.weight',
      'model.layers.2.post_attention_layernorm.weight',
      'model.layers.2.mlp.up_proj.weight',
      'model.layers.2.mlp.down_proj.biases',
      'model.layers.2.mlp.down_proj.weight',
      'model.layers.2.self_attn.k_norm.weight',
      'model.layers.2.self_attn.o_proj.weight',
      'model.layers.2.self_attn.q_proj.bias',
      'model.layers.2.self_attn.q_proj.scales',
      'model.layers.2.self_attn.q_proj.weight',
      'model.embed_tokens.weight',
    ];
    const sorted = [...names].sort((a, b) => (qwen3.orderKey(a) < qwen3.orderKey(b) ? -1 : 1));
    assert.deepEqual(sorted, [
      'model.embed_tokens.weight',
      'model.layers.2.self_attn.q_proj.weight',
      'model.layers.2.self_attn.q_proj.scales',
      'model.layers.2.self_attn.q_proj.bias',
      'model.layers.2.self_attn.o_proj.weight',
      'model.layers.2.self_attn.k_norm.weight',
      'model.layers.2.mlp.down_proj.weight',
      'model.layers.2.mlp.down_proj.biases',
      'model.layers.2.mlp.up_proj.weight',
      'model.layers.2.post_attention_layernorm.weight',
      'model.layers.10.mlp.up_proj.weight',
      'model.norm.weight',
      'lm_head.weight',
    ]);
  });
  test('tied lm_head is dropped; roles; quantizable only Linear/Embedding weights', () => {
    assert.equal(llama.describe('lm_head.weight', [512, 64], true).mlxName, null);
    assert.equal(llama.describe('lm_head.weight', [512, 64], false).mlxName, 'lm_head.weight');
    assert.equal(llama.describe('model.layers.0.self_attn.rotary_emb.inv_freq', [4], true).mlxName, null);
    const b = llama.describe('model.layers.0.self_attn.q_proj.bias', [64], true);
    assert.equal(b.role, 'bias');
    assert.equal(b.quantizable, false);
    assert.equal(llama.describe('model.embed_tokens.weight', [512, 64], true).quantizable, true);
    assert.throws(() => qwen3.tied({}), /tie_word_embeddings/);
    assert.equal(llama.tied({}), true);
  });
});

describe('rng', () => {
  test('fillU32 continues exactly the nextU32 stream', async () => {
    const { Rng } = await import('../src/rng.js');
    const a = new Rng(5);
    const b = new Rng(5);
    const buf = a.fillU32(new Uint32Array(1000));
    for (let i = 0; i < 1000; i++) assert.equal(buf[i], b.nextU32());
    assert.equal(a.nextU32(), b.nextU32());
  });
});
