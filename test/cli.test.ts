/** CLI behaviour: determinism across runs and thread counts, reference manifests, inspect, analyze, demo. */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { writeSynthCheckpoint } from '../src/synth/checkpoint.js';
import { swan } from './helpers/cli.js';
import { STORIES, tempDir } from './helpers/paths.js';

const tmp = tempDir();
after(() => tmp.cleanup());

describe('determinism', () => {
  const model = join(tmp.dir, 'synth-640');
  before(() => {
    // min dim 640 > 512: the randomized SVD path, through the multi-threaded GEMM
    writeSynthCheckpoint(model, { modelType: 'qwen3', hidden: 640, intermediate: 1280, layers: 1, heads: 5, kvHeads: 5, headDim: 128, vocab: 1024, tied: true });
  });

  test('same input and options give the same manifest and bytes, for 1 and 2 threads and run to run', () => {
    const outs = [
      ['--threads', '1'],
      ['--threads', '2'],
      ['--threads', '2'],
    ].map((flags, i) => {
      const out = join(tmp.dir, `det-${i}`);
      // The default budget plan computes every metric of every scored tensor.
      const r = swan(['quantize', model, '-o', out, '--quiet', ...flags]);
      assert.equal(r.status, 0, r.stderr);
      return out;
    });
    const manifest = (d: string) => readFileSync(join(d, 'swan-manifest.json'));
    const weights = (d: string) => readFileSync(join(d, 'model.safetensors'));
    for (const o of outs.slice(1)) {
      assert.ok(manifest(o).equals(manifest(outs[0]!)), 'manifest bytes');
      assert.ok(weights(o).equals(weights(outs[0]!)), 'safetensors bytes');
    }
    const m = JSON.parse(manifest(outs[0]!).toString());
    const q = m.shards['model.safetensors'].tensors['model.layers.0.self_attn.q_proj.weight'];
    assert.ok(q.raw_metrics.svd_concentration > 0 && q.raw_metrics.svd_concentration < 1);
  });

  test('skipping metrics that cannot change a decision gives the same model bytes', () => {
    for (const src of [model, STORIES]) {
      const outs = [[], ['--all-metrics']].map((flags, i) => {
        // SWAN's thresholds are what skips metrics: the default budget plan weighs every score.
        const out = join(tmp.dir, `skip-${i}-${src === model ? 'synth' : 'stories'}`);
        const r = swan(['quantize', src, '-o', out, '--quiet', '--strategy', 'thresholds', ...flags]);
        assert.equal(r.status, 0, r.stderr);
        return out;
      });
      for (const f of ['model.safetensors', 'config.json']) {
        assert.ok(readFileSync(join(outs[0]!, f)).equals(readFileSync(join(outs[1]!, f))), f);
      }
      const fast = JSON.parse(readFileSync(join(outs[0]!, 'swan-manifest.json'), 'utf8'));
      const full = JSON.parse(readFileSync(join(outs[1]!, 'swan-manifest.json'), 'utf8'));
      let skipped = 0;
      for (const [shard, s] of Object.entries<any>(fast.shards)) {
        for (const [name, t] of Object.entries<any>(s.tensors)) {
          const u = full.shards[shard].tensors[name];
          assert.equal(t.decision.bits, u.decision.bits, name);
          if (t.composite_score === null) {
            skipped++;
            const [lo, hi] = t.decision.reason.match(/\[([0-9.]+), ([0-9.]+)\]/).slice(1).map(Number);
            assert.ok(u.composite_score >= lo - 1e-3 && u.composite_score <= hi + 1e-3, name);
            assert.equal(t.scores.kurtosis, u.scores.kurtosis);
          }
        }
      }
      assert.ok(skipped > 0, 'some tensors were decided by the cheap metrics');
    }
  });

  test('a different seed changes the random metrics', () => {
    const a = swan(['analyze', model, '--seed', '1', '-q']);
    const b = swan(['analyze', model, '--seed', '2', '-q']);
    assert.equal(a.status, 0, a.stderr);
    const ta = JSON.parse(a.stdout).shards['model.safetensors'].tensors['model.layers.0.self_attn.q_proj.weight'];
    const tb = JSON.parse(b.stdout).shards['model.safetensors'].tensors['model.layers.0.self_attn.q_proj.weight'];
    assert.notEqual(ta.raw_metrics.output_delta, tb.raw_metrics.output_delta);
    assert.equal(ta.raw_metrics.kurtosis, tb.raw_metrics.kurtosis);
  });
});

describe('manifests', () => {
  test('analyze writes the reference schema plus formats, bytes and true sizes', () => {
    const file = join(tmp.dir, 'stories-manifest.json');
    const r = swan(['analyze', STORIES, '-o', file]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /true bpw/);
    const m = JSON.parse(readFileSync(file, 'utf8'));
    for (const k of ['model', 'config', 'total_layers', 'total_tensors', 'shards', 'summary']) assert.ok(k in m, k);
    assert.equal(m.total_layers, 5);
    assert.equal(m.model.includes('/root') || m.model.startsWith('/'), false, 'no absolute path');
    const t = m.shards['model.safetensors'].tensors['model.layers.0.mlp.down_proj.weight'];
    assert.deepEqual(t.shape, [64, 172]);
    assert.equal(t.dtype, 'torch.bfloat16');
    assert.deepEqual(t.format, { float: 'bfloat16' }, 'down_proj 172 is not divisible by 64');
    const norm = m.shards['model.safetensors'].tensors['model.norm.weight'];
    assert.deepEqual(norm.decision, { bits: 16, reason: '1d_tensor' });
    const sum = Object.values<any>(m.shards['model.safetensors'].tensors).reduce((s, x) => s + x.bytes, 0);
    assert.equal(m.summary.output_bytes, sum);
    assert.equal(m.summary.true_bpw, Math.round((8 * sum / m.summary.output_params) * 1e4) / 1e4);
  });

  test('quantize --manifest accepts a manifest in the reference tool schema', () => {
    // The reference writes only decisions (and scores) per shard; give k_proj 8-bit, v_proj 2-bit.
    const base = JSON.parse(swan(['analyze', STORIES, '-q']).stdout);
    const ref: any = { model: 'stories260K', config: {}, total_layers: 5, total_tensors: 0, shards: { 'model.safetensors': { file: 'model.safetensors', tensors: {} } }, summary: {} };
    for (const [name, t] of Object.entries<any>(base.shards['model.safetensors'].tensors)) {
      let bits = name.endsWith('k_proj.weight') ? 8 : name.endsWith('v_proj.weight') ? 2 : t.decision.bits;
      if (name.includes('embed')) bits = 16;
      ref.shards['model.safetensors'].tensors[name] = { shape: t.shape, dtype: 'torch.bfloat16', num_params: t.num_params, classification: 'default', scores: {}, composite_score: 0.3, decision: { bits, reason: 'default' } };
    }
    const file = join(tmp.dir, 'reference-manifest.json');
    writeFileSync(file, JSON.stringify(ref, null, 2));
    const out = join(tmp.dir, 'from-ref');
    const r = swan(['quantize', STORIES, '--manifest', file, '-o', out, '--quiet']);
    assert.equal(r.status, 0, r.stderr);
    const q = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).quantization;
    assert.deepEqual(q['model.layers.0.self_attn.k_proj'], { group_size: 64, bits: 8, mode: 'affine' });
    assert.deepEqual(q['model.layers.0.self_attn.v_proj'], { group_size: 32, bits: 2, mode: 'affine' });
    assert.equal(q['model.layers.0.self_attn.q_proj'], undefined, '4-bit at the top-level group needs no entry');
  });

  test('a manifest missing a tensor of the model is a clear error', () => {
    const file = join(tmp.dir, 'partial.json');
    writeFileSync(file, JSON.stringify({ shards: { x: { tensors: { 'model.norm.weight': { shape: [64], decision: { bits: 16 } } } } } }));
    const r = swan(['quantize', STORIES, '--manifest', file, '-o', join(tmp.dir, 'never'), '--quiet']);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /partial\.json.*has no entry for tensor model\.embed_tokens\.weight/);
  });

  test('a manifest that claims search measurements must have them for every candidate', () => {
    const m = JSON.parse(swan(['analyze', STORIES, '-q']).stdout);
    delete m.shards['model.safetensors'].tensors['model.layers.2.mlp.up_proj.weight'].candidates[1].rel_error_search;
    const file = join(tmp.dir, 'no-search.json');
    writeFileSync(file, JSON.stringify(m));
    const r = swan(['quantize', STORIES, '--manifest', file, '--target-bpw', '7', '--rounding', 'search', '-o', join(tmp.dir, 'never-search'), '--quiet']);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /^swan: error: .*no-search\.json: tensor model\.layers\.2\.mlp\.up_proj\.weight candidate 1 has no rel_error_search/);
  });

  test('hostile or foreign manifests are refused with the file and the JSON path, before any writing', () => {
    const base = JSON.parse(swan(['analyze', STORIES, '-q', '--no-search-errors']).stdout);
    const q = 'model.layers.0.self_attn.q_proj.weight';
    const cases: [string, (m: any) => void, RegExp][] = [
      ['string-error', (m) => (m.shards['model.safetensors'].tensors[q].candidates[0].rel_error = 'x'), /candidates\[0\]\.rel_error must be number/],
      ['negative-error', (m) => (m.shards['model.safetensors'].tensors[q].candidates[3].rel_error = -0.5), /candidates\[3\]\.rel_error must be >= 0/],
      ['null-entry', (m) => (m.shards['model.safetensors'].tensors[q] = null), /tensors\["model\.layers\.0\.self_attn\.q_proj\.weight"\] must be object/],
      ['bad-bits', (m) => (m.shards['model.safetensors'].tensors[q].candidates[0].bits = 7), /candidates\[0\]\.bits must be one of 2, 3, 4, 5, 6, 8/],
      ['bad-rules', (m) => (m.measurement.mlx_rules = 'gpu'), /\$\.measurement\.mlx_rules must be one of "metal", "cpu"/],
      ['other-shape', (m) => (m.shards['model.safetensors'].tensors[q].shape = [64, 128]), /tensor model\.layers\.0\.self_attn\.q_proj\.weight has shape \[64, 128\] but the model's is \[64, 64\]/],
      ['extra-tensor', (m) => (m.shards['model.safetensors'].tensors['model.layers.9.mlp.up_proj.weight'] = { shape: [1, 1] }), /names tensor "model\.layers\.9\.mlp\.up_proj\.weight", which the model does not have/],
    ];
    for (const [name, edit, expected] of cases) {
      const m = structuredClone(base);
      edit(m);
      const file = join(tmp.dir, `${name}.json`);
      writeFileSync(file, JSON.stringify(m));
      for (const flags of [['--target-bpw', '7'], []]) {
        const out = join(tmp.dir, `never-${name}`);
        const r = swan(['quantize', STORIES, '--manifest', file, '-o', out, '--quiet', ...flags]);
        assert.notEqual(r.status, 0, `${name} ${flags.join(' ')}`);
        assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
        assert.match(r.stderr, new RegExp(`${name}\\.json: `), r.stderr);
        assert.match(r.stderr, expected, `${name} ${flags.join(' ')}`);
        assert.ok(!existsSync(out));
      }
    }
  });
});

describe('inspect, dry run, demo', () => {
  test('inspect lists quantized layers with their logical shapes', () => {
    const out = join(tmp.dir, 'u4');
    assert.equal(swan(['quantize', STORIES, '-o', out, '--uniform', '--quiet']).status, 0);
    const r = swan(['inspect', out]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /model\.layers\.0\.self_attn\.q_proj\.weight\s+U32\s+64×64\s+4-bit g64/);
    assert.match(r.stdout, /model\.layers\.0\.mlp\.down_proj\.weight\s+BF16\s+64×172\s+-/);
    const j = JSON.parse(swan(['inspect', out, '--json']).stdout);
    assert.equal(j.total_params, 260032);
  });

  test('--dry-run prints the plan and writes nothing', () => {
    const out = join(tmp.dir, 'dry');
    const r = swan(['quantize', STORIES, '-o', out, '--dry-run', '-v']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /dry run/);
    assert.match(r.stdout, /4-bit g64/);
    assert.throws(() => readFileSync(join(out, 'config.json')));
  });

  test('the default aims at the bytes of SWAN\'s thresholds plan and says so in one line', () => {
    const def = swan(['quantize', STORIES, '--dry-run']);
    const thr = swan(['quantize', STORIES, '--dry-run', '--strategy', 'thresholds']);
    assert.equal(def.status, 0, def.stderr);
    assert.equal(thr.status, 0, thr.stderr);
    const total = (out: string) => Number(/^total +\d+ +[\d,]+ +100\.00% +([\d,]+)$/m.exec(out)![1]!.replace(/,/g, ''));
    const line = /^size: ([\d,]+) bytes of tensors \([\d.]+ bpw\), what SWAN's thresholds \(--strategy thresholds\) would write, .*--target-bpw or --target-size/m.exec(def.stdout);
    assert.ok(line, def.stdout);
    assert.equal(Number(line[1]!.replace(/,/g, '')), total(thr.stdout));
    assert.ok(total(def.stdout) <= total(thr.stdout) && total(def.stdout) >= 0.995 * total(thr.stdout));
    assert.doesNotMatch(thr.stdout, /^size:/m);
  });

  test('demo runs end to end and prints the allocation and output path', () => {
    const r = swan(['demo', '--dir', join(tmp.dir, 'demo')]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /8-bit g64/);
    assert.match(r.stdout, /MLX model: .*demo-llama-swan-mlx/);
    assert.match(r.stdout, /\nNext:\n  swan report .*demo-llama-swan-mlx -o swan-report\.html[^\n]*\n.*swan quantize HuggingFaceTB\/SmolLM2-135M-Instruct[^\n]*\n.*mlx_lm\.generate --model smollm2-swan/);
    assert.match(r.stdout, /The demo's files are in .*demo\.\n$/);
  });
});
