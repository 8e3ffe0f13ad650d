/**
 * Output bytes pinned across refactors: stories260K and a generated Qwen3-shaped checkpoint,
 * quantized with thresholds, uniform, and the budget strategy (RTN and search, with user
 * --protect/--sensitive), must give the plans and the bytes recorded in test/golden/outputs.json.
 *
 * The recording was made with `--backend js` (plain JavaScript kernels: the same float results on
 * every machine), so the scores that steer the plans cannot differ by BLAS build. To record again
 * after an intended change of output: `npm run build && SWAN_RECORD_GOLDEN=1 node --test
 * dist/test/golden-outputs.test.js`, and say in the commit why the bytes changed.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { writeSynthCheckpoint } from '../src/synth/checkpoint.js';
import { swan } from './helpers/cli.js';
import { REPO, STORIES, tempDir } from './helpers/paths.js';

const GOLDEN = join(REPO, 'test', 'golden', 'outputs.json');
const RECORD = process.env.SWAN_RECORD_GOLDEN === '1';

interface CaseOutput {
  /** HF tensor name → written format as the manifest spells it (bits/group, float, dropped), plus bytes. */
  plan: Record<string, string>;
  /** sha256 of each written tensor file, the index and config.json. */
  files: Record<string, string>;
}

const MODES: Record<string, string[]> = {
  thresholds: ['--strategy', 'thresholds'],
  'thresholds-protect-sensitive': ['--strategy', 'thresholds', '--protect', 'layers.1.mlp', '--sensitive', 'o_proj'],
  'uniform-4-g64': ['--uniform', '--q-bits', '4', '--q-group-size', '64'],
  'uniform-3-g32': ['--uniform', '--q-bits', '3', '--q-group-size', '32'],
  'budget-rtn': ['--target-bpw', '7', '--rounding', 'rtn'],
  'budget-search': ['--target-bpw', '7', '--rounding', 'search'],
  'budget-protect-sensitive': ['--target-bpw', '7.5', '--rounding', 'rtn', '--protect', 'layers.1.mlp', '--sensitive', 'o_proj'],
};

function describeFormat(f: Record<string, unknown>): string {
  if ('bits' in f) return f.mode && f.mode !== 'affine' ? String(f.mode) : `${f.bits}-bit g${f.group_size}`;
  if ('float' in f) return String(f.float);
  return 'dropped';
}

function summarize(out: string): CaseOutput {
  // Uniform outputs have no manifest: their plan is config.json's `quantization`, hashed below.
  const manifestFile = join(out, 'swan-manifest.json');
  const manifest = existsSync(manifestFile) ? JSON.parse(readFileSync(manifestFile, 'utf8')) : { shards: {} };
  const plan: Record<string, string> = {};
  for (const shard of Object.values(manifest.shards) as { tensors: Record<string, { format: Record<string, unknown>; bytes: number }> }[]) {
    for (const [name, t] of Object.entries(shard.tensors)) plan[name] = `${describeFormat(t.format)} ${t.bytes}`;
  }
  const files: Record<string, string> = {};
  for (const f of readdirSync(out).sort()) {
    if (f.endsWith('.safetensors') || f === 'model.safetensors.index.json' || f === 'config.json') {
      files[f] = createHash('sha256').update(readFileSync(join(out, f))).digest('hex');
    }
  }
  return { plan, files };
}

const tmp = tempDir();
after(() => tmp.cleanup());

describe('output bytes match the recorded ones', () => {
  const qwen3 = join(tmp.dir, 'qwen3-synth');
  const models: Record<string, string> = { stories260K: STORIES, 'qwen3-synth': qwen3 };
  const recorded: Record<string, CaseOutput> = {};
  before(() => {
    writeSynthCheckpoint(qwen3, { modelType: 'qwen3', hidden: 256, intermediate: 768, layers: 2, heads: 4, kvHeads: 2, headDim: 64, vocab: 1024, tied: true });
  });
  after(() => {
    if (!RECORD) return;
    mkdirSync(dirname(GOLDEN), { recursive: true });
    writeFileSync(GOLDEN, JSON.stringify(recorded, null, 1) + '\n');
  });
  const expected: Record<string, CaseOutput> = !RECORD && existsSync(GOLDEN) ? JSON.parse(readFileSync(GOLDEN, 'utf8')) : {};

  for (const model of Object.keys(models)) {
    for (const [mode, flags] of Object.entries(MODES)) {
      const key = `${model} ${mode}`;
      test(key, () => {
        const out = join(tmp.dir, key.replace(/\s+/g, '_'));
        const r = swan(['quantize', models[model]!, '-o', out, '--quiet', '--backend', 'js', ...flags]);
        assert.equal(r.status, 0, r.stderr);
        const got = summarize(out);
        if (RECORD) {
          recorded[key] = got;
          return;
        }
        const want = expected[key];
        assert.ok(want, `${key} is not recorded in test/golden/outputs.json`);
        assert.deepEqual(got.plan, want.plan, `${key}: plan`);
        assert.deepEqual(got.files, want.files, `${key}: output bytes`);
      });
    }
  }
});
