/**
 * The budget strategy end to end: targets hit within 0.5% (stories260K and Qwen3-0.6B shapes),
 * re-planning from a manifest gives the fresh run's plan, plain errors for impossible targets.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { architectureFor } from '../src/arch/index.js';
import { roundToDType } from '../src/io/float.js';
import { readTensorF32 } from '../src/io/safetensors.js';
import { planModel, resolveQuantizeOptions } from '../src/pipeline/quantize.js';
import { DEFAULTS } from '../src/options.js';
import { openModel } from '../src/arch/source.js';
import { planBudget, type BudgetItem } from '../src/plan/budget.js';
import { measureCandidates } from '../src/measure/candidates.js';
import { measurableFormats } from '../src/plan/eligibility.js';
import { formatBytes, formatOfMode, numel } from '../src/format.js';
import { planTotals, type Plan } from '../src/plan/plan.js';
import { qwen3_0_6B, synthTensors, writeSynthCheckpoint } from '../src/synth/checkpoint.js';
import { swan } from './helpers/cli.js';
import { STORIES, tempDir } from './helpers/paths.js';

function assertHit(plan: Plan, label: string): void {
  const t = planTotals(plan);
  const target = plan.budget!.targetBytes;
  assert.ok(t.bytes <= target, `${label}: ${t.bytes} bytes over the target ${target}`);
  assert.ok(t.bytes >= 0.995 * target, `${label}: ${t.bytes} bytes is more than 0.5% under ${target}`);
}

function formats(plan: Plan): string[] {
  return plan.entries.map((e) => `${e.hfName}=${e.format.kind === 'float' ? 'float' : `${e.format.bits}/${e.format.groupSize}`}`);
}

describe('default rounding', () => {
  test('the budget (default strategy, or a size target) takes DEFAULTS.budgetRounding; other strategies keep MLX round-to-nearest; an explicit --rounding wins', () => {
    assert.equal(resolveQuantizeOptions({ target: { bpw: 4.5 } }).rounding, DEFAULTS.budgetRounding);
    assert.equal(resolveQuantizeOptions({}).rounding, DEFAULTS.budgetRounding);
    assert.equal(resolveQuantizeOptions({ strategy: 'thresholds' }).rounding, 'rtn');
    assert.equal(resolveQuantizeOptions({ strategy: 'uniform' }).rounding, 'rtn');
    assert.equal(resolveQuantizeOptions({ target: { bpw: 4.5 }, rounding: 'rtn' }).rounding, 'rtn');
  });
});

describe('budget strategy on stories260K', () => {
  const tmp = tempDir();
  const manifest = join(tmp.dir, 'manifest.json');
  before(() => {
    const r = swan(['analyze', STORIES, '-o', manifest, '-q']);
    assert.equal(r.status, 0, r.stderr);
  });
  after(() => tmp.cleanup());

  test('the manifest stores every candidate with exact bytes and measured errors', () => {
    const m = JSON.parse(readFileSync(manifest, 'utf8'));
    assert.deepEqual(m.measurement, { dtype: 'bfloat16', mlx_rules: 'metal', rounding_search: true, input_weighting: 'norm' });
    const v = m.shards['model.safetensors'].tensors['model.layers.0.self_attn.v_proj.weight'];
    // 64 columns: groups 32 and 64 × six bit widths, and the three fp modes.
    assert.equal(v.candidates.length, 15);
    assert.deepEqual(v.candidates.slice(12).map((c: any) => c.mode), ['mxfp4', 'nvfp4', 'mxfp8']);
    for (const c of v.candidates) {
      assert.equal(c.bytes, formatBytes(formatOfMode(c.mode ?? 'affine', c.bits, c.group_size), v.shape, 'BF16'));
      assert.ok(c.rel_error > 0 && c.rel_error < 0.5);
      assert.ok(c.rel_error_search <= c.rel_error);
    }
    // Fewer bits, more error; smaller groups, less error.
    const err = (b: number, g: number) => v.candidates.find((c: any) => c.bits === b && c.group_size === g && !c.mode).rel_error;
    for (const g of [32, 64]) for (const [lo, hi] of [[2, 3], [3, 4], [4, 5], [5, 6], [6, 8]]) assert.ok(err(lo!, g) > err(hi!, g));
    assert.ok(err(4, 32) < err(4, 64));
    // down_proj (172 columns) cannot be quantized: no candidates, only float.
    assert.equal(m.shards['model.safetensors'].tensors['model.layers.0.mlp.down_proj.weight'].candidates, undefined);
  });

  test('re-planning from the manifest hits every target within 0.5% (bpw and sizes)', () => {
    const targets = [{ bpw: 5.5 }, { bpw: 6 }, { bpw: 6.965 }, { bpw: 7.5 }, { bpw: 9 }, { bpw: 12 }, { bytes: 200_000 }, { bytes: 250_000 }];
    for (const rounding of ['rtn', 'search'] as const) {
      for (const target of targets) {
        const { plan } = planModel(STORIES, { strategy: 'budget', target, rounding, manifestFile: manifest });
        assertHit(plan, `${JSON.stringify(target)} ${rounding}`);
      }
    }
  });

  test('re-plan from the manifest = fresh run (same formats, same bytes, same printed plan)', () => {
    for (const [bpw, rounding] of [['6.2', 'rtn'], ['7', 'search']] as const) {
      const fresh = swan(['quantize', STORIES, '-o', join(tmp.dir, 'x'), '--target-bpw', bpw, '--rounding', rounding, '--dry-run', '-v']);
      const re = swan(['quantize', STORIES, '-o', join(tmp.dir, 'x'), '--manifest', manifest, '--target-bpw', bpw, '--rounding', rounding, '--dry-run', '-v']);
      assert.equal(fresh.status, 0, fresh.stderr);
      assert.equal(re.status, 0, re.stderr);
      assert.match(fresh.stdout, /budget: target/);
      assert.equal(re.stdout, fresh.stdout);
    }
    // In-process too, from the manifest the fresh run itself wrote (the kernel backend is the same:
    // the CLI's WebAssembly GEMM and the library's default may differ in the last bits of a score).
    const fresh = planModel(STORIES, { strategy: 'budget', target: { bpw: 6.5 }, rounding: 'search' });
    const own = join(tmp.dir, 'own-manifest.json');
    writeFileSync(own, JSON.stringify(fresh.manifest, null, 2));
    const a = fresh.plan;
    const b = planModel(STORIES, { strategy: 'budget', target: { bpw: 6.5 }, rounding: 'search', manifestFile: own }).plan;
    assert.deepEqual(formats(b), formats(a));
    assert.equal(planTotals(b).bytes, planTotals(a).bytes);
    assert.equal(b.budget!.damage, a.budget!.damage);
  });

  test('a budget plan is mixed: sensitive roles get more bits than the bulk', () => {
    const { plan } = planModel(STORIES, { strategy: 'budget', target: { bpw: 6.965 }, manifestFile: manifest });
    const bitsOf = (re: RegExp) => plan.entries.filter((e) => re.test(e.hfName) && e.format.kind === 'affine').map((e) => (e.format.kind === 'affine' ? e.format.bits : 16));
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    assert.ok(mean(bitsOf(/v_proj/)) > mean(bitsOf(/(gate|up)_proj/)));
    assert.ok(new Set(plan.entries.filter((e) => e.format.kind === 'affine').map((e) => (e.format.kind === 'affine' ? e.format.bits : 0))).size >= 2);
  });

  test('impossible targets and contradictory flags: one plain line, non-zero exit', () => {
    const low = swan(['quantize', STORIES, '-o', join(tmp.dir, 'x'), '--manifest', manifest, '--target-bpw', '3', '--dry-run']);
    assert.notEqual(low.status, 0);
    assert.match(low.stderr, /^swan: error: target 3 bits per weight = [\d,]+ bytes \(3\.000 bpw\) is below the smallest possible size, [\d,]+ bytes \([\d.]+ bpw\)\n$/);
    const high = swan(['quantize', STORIES, '-o', join(tmp.dir, 'x'), '--manifest', manifest, '--target-size', '10MB', '--dry-run']);
    assert.notEqual(high.status, 0);
    assert.match(high.stderr, /above the largest possible size, [\d,]+ bytes \(16\.000 bpw, everything in float\)/);
    for (const args of [
      ['--target-bpw', '5', '--uniform'],
      ['--target-bpw', '5', '--strategy', 'thresholds'],
      ['--target-bpw', '5', '--target-size', '1MB'],
      ['--target-size', '5XB'],
    ]) {
      const r = swan(['quantize', STORIES, '-o', join(tmp.dir, 'x'), '--dry-run', ...args]);
      assert.notEqual(r.status, 0, args.join(' '));
      assert.match(r.stderr, /error/);
    }
  });
});

describe('budget strategy on Qwen3-0.6B shapes', () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());

  // The real analysis of a 0.6B model takes minutes; CI uses a 2-layer, 2048-token-vocab variant
  // with real weights and real measurements, and the full shapes with modelled errors.
  test('2-layer, 2048-vocab Qwen3-0.6B-shaped checkpoint, measured candidates: every target within 0.5%', () => {
    const dir = join(tmp.dir, 'qwen3-small');
    writeSynthCheckpoint(dir, { ...qwen3_0_6B(2), vocab: 2048 }, { seed: 5 });
    const source = openModel(dir);
    const items: BudgetItem[] = source.entries.map(({ info, record }) => ({
      record,
      shape: info.shape,
      composite: 0.3,
      candidates: record.quantizable
        ? measureCandidates(measurableFormats(record, info.shape), info.shape, roundToDType(readTensorF32(info), source.dtype), { dtype: source.dtype, rules: 'metal', search: false, weighting: 'none' })
        : [],
    }));
    for (const bpw of [2.6, 3, 3.5, 4.25, 4.5, 5, 6, 8, 12]) {
      const plan = planBudget(items, source.dtype, { target: { bpw }, rounding: 'rtn', totalLayers: source.totalLayers, tied: source.tied, eligibility: {} });
      assertHit(plan, `${bpw} bpw`);
    }
  });

  test('full Qwen3-0.6B shapes (28 layers, vocab 151936), modelled errors: every target within 0.5%', () => {
    const shape = qwen3_0_6B();
    const arch = architectureFor('qwen3')!;
    const items: BudgetItem[] = synthTensors(shape).map((t, i) => {
      const record = arch.describe(t.name, t.shape, shape.tied);
      const candidates = measurableFormats(record, t.shape).map((format) => {
        // Roughly what the measurements look like: ×¼ per extra bit, a little more error for larger groups
        // (the fp modes modelled alike, by their bits and group).
        const relError = 0.04 * 4 ** (2 - format.bits) * (format.groupSize / 64) ** 0.3 * (1 + 0.1 * Math.sin(i));
        return { format, bytes: formatBytes(format, t.shape, 'BF16'), relError };
      });
      return { record, shape: t.shape, composite: 0.3 + 0.2 * Math.cos(i), candidates };
    });
    const params = items.filter((it) => it.record.mlxName !== null).reduce((s, it) => s + numel(it.shape), 0);
    assert.ok(params > 590e6 && params < 600e6, `${params}`);
    for (const target of [{ bpw: 2.6 }, { bpw: 3.5 }, { bpw: 4.5 }, { bpw: 5 }, { bpw: 6.5 }, { bpw: 9 }, { bytes: 400_000_000 }, { bytes: 0.3 * 2 ** 30 }]) {
      const plan = planBudget(items, 'BF16', { target, rounding: 'rtn', totalLayers: shape.layers, tied: true, eligibility: {} });
      assertHit(plan, JSON.stringify(target));
    }
  });
});
