/**
 * The import layering docs/design.md describes: src/plan is pure policy (never the quantizer or the
 * kernels), nothing outside src/cli imports the CLI, and no folder imports one above it.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { test } from 'node:test';
import { REPO } from './helpers/paths.js';

const SRC = join(REPO, 'src');

/** [importing file, imported file] for every relative import under src/, type-only ones included. */
function imports(): [string, string][] {
  const out: [string, string][] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (p.endsWith('.ts')) {
        for (const m of readFileSync(p, 'utf8').matchAll(/from '(\.[^']+)'/g)) out.push([relative(SRC, p), relative(SRC, normalize(join(dirname(p), m[1]!)))]);
      }
    }
  };
  walk(SRC);
  return out;
}

const top = (f: string) => (f.includes('/') ? f.split('/')[0]! : f.replace(/\.(ts|js)$/, ''));

/** Each folder (or top-level module) and what it may import; docs/design.md "Layering". */
const ALLOWED: Record<string, string[]> = {
  errors: [],
  io: ['errors'],
  format: ['io'],
  rng: [],
  round: [],
  python: [],
  options: ['python', 'rng'],
  arch: ['errors', 'io'],
  mlx: ['format', 'io', 'options', 'round'],
  kernels: ['io', 'mlx', 'options'],
  metrics: ['kernels', 'rng', 'round'],
  plan: ['arch', 'format', 'io', 'metrics', 'options'],
  measure: ['arch', 'errors', 'format', 'io', 'kernels', 'metrics', 'mlx', 'options', 'plan'],
  manifest: ['arch', 'errors', 'format', 'io', 'measure', 'metrics', 'options', 'plan'],
  report: ['io', 'manifest', 'options', 'plan'],
  eval: ['errors', 'io', 'python', 'report'],
  hub: ['errors', 'io'],
  synth: ['arch', 'io', 'rng'],
  pipeline: ['arch', 'errors', 'format', 'io', 'kernels', 'manifest', 'measure', 'metrics', 'mlx', 'options', 'plan', 'report'],
};

test('every folder imports only the folders below it; plan never mlx or kernels; nothing outside cli imports cli', () => {
  const bad = imports()
    .map(([from, to]) => [top(from), top(to), from, to] as const)
    .filter(([a, b]) => a !== b && a !== 'cli' && a !== 'index' && !(ALLOWED[a] ?? []).includes(b))
    .map(([, , from, to]) => `${from} imports ${to}`);
  assert.deepEqual(bad, []);
  assert.ok(imports().some(([from]) => from.startsWith('plan/')), 'the scan sees src/plan');
});
