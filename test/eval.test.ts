/**
 * `swan eval` (perplexity / KL through real mlx-lm) and `swan quantize --eval`:
 * - the PPL equals an independent numpy float64 Llama forward on the fixture's own token ids, same
 *   windows (tight), and agrees with the fixture README's whole-text 5.0486 within the sampling error
 *   of a 16-window subset (loose; explained below);
 * - --vs of a model against itself gives KL 0; the uniform 8-bit output's KL is small and positive,
 *   and `quantize --eval` puts those numbers into the model card.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setCardResults } from '../src/eval/card-results.js';
import { runPython, venvPython } from '../src/python.js';
import { resultsSection } from '../src/report/model-card.js';
import { swan } from './helpers/cli.js';
import { FIXTURES, PY, STORIES, tempDir } from './helpers/paths.js';

const skip = process.env.SWAN_SKIP_PYTHON ? 'SWAN_SKIP_PYTHON is set' : false;
const TEXT = join(FIXTURES, 'text', 'tinystories-valid.txt');
const IDS = join(FIXTURES, 'text', 'tinystories-valid.tok512.bin');
/** Fixture README: stories260K on TinyStories, all 512-token windows (tail included), float64. */
const FIXTURE_PPL = 5.0486;

describe('model card results section', () => {
  const card = '# m\n\n## Method\n\nx\n\n## Use with mlx-lm\n\nuse\n';
  const a = resultsSection([{ label: 'm', text: 't.txt', ppl: 5.1, sourcePpl: 5, kl: 0.01, top1Agree: 0.9 }], 'protocol P');
  const b = resultsSection([{ label: 'm', text: 'u.txt', ppl: 7, sourcePpl: 6.5, kl: 0.02 }]);

  test('goes before the usage section, with ΔPPL and KL', () => {
    const out = setCardResults(card, a);
    assert.ok(out.indexOf('## Results') > out.indexOf('## Method') && out.indexOf('## Results') < out.indexOf('## Use with mlx-lm'));
    assert.match(out, /\| t\.txt \| 5\.0000 \| 5\.1000 \| \+0\.1000 \| 0\.01000 \| 90\.00% \|/);
    assert.match(out, /protocol P/);
  });

  test('a second evaluation replaces the section instead of adding one', () => {
    const out = setCardResults(setCardResults(card, a), b);
    assert.equal(out.match(/## Results/g)?.length, 1);
    assert.match(out, /u\.txt/);
    assert.doesNotMatch(out, /t\.txt/);
    assert.ok(out.endsWith('## Use with mlx-lm\n\nuse\n'));
  });
});

describe('swan eval through real mlx-lm', { skip }, () => {
  const tmp = tempDir();
  before(() => venvPython());
  after(() => tmp.cleanup());

  test('PPL equals a numpy forward on the same windows; --vs itself gives KL 0', () => {
    const r = swan(['eval', STORIES, '--text', TEXT, '--samples', '16', '--seed', '123', '--compute-dtype', 'float32', '--vs', STORIES, '--json']);
    assert.equal(r.status, 0, r.stderr);
    const ev = JSON.parse(r.stdout);
    assert.equal(ev.windows, 16);
    assert.equal(ev.tokens, 16 * 511);
    assert.equal(ev.protocol.windowsAvailable, 767);
    // Independent: fixture token ids (llama2.c encode), own safetensors reader, float64 numpy Llama.
    const ref = JSON.parse(runPython(join(PY, 'np_llama_ppl.py'), [STORIES, IDS, '512', '16', '123']));
    assert.equal(ref.tokens_scored, ev.tokens);
    assert.ok(Math.abs(ev.ppl / ref.ppl - 1) < 1e-4, `mlx-lm ${ev.ppl} vs numpy ${ref.ppl}`);
    // A subset of windows estimates the whole-text PPL only to within its sampling error: windows
    // differ a lot (sd of a window's mean CE ≈ 0.39 nats here). Bound at 4 standard errors computed
    // from the sampled windows themselves (the fixed seed happens to land close: ~0.03 se).
    const w: number[] = ref.window_ce;
    const mean = w.reduce((s, x) => s + x, 0) / w.length;
    const se = Math.sqrt(w.reduce((s, x) => s + (x - mean) ** 2, 0) / (w.length - 1) / w.length);
    assert.ok(Math.abs(Math.log(ev.ppl / FIXTURE_PPL)) < 4 * se, `ppl ${ev.ppl} vs fixture ${FIXTURE_PPL} (se of log ppl ${se})`);
    assert.ok(Math.abs(ev.pplStderrWindows / ev.ppl - se) < 0.01, 'window-level stderr as computed by the script');
    // Against itself: the same log-probs, so KL is 0 and every argmax agrees.
    assert.equal(ev.source.ppl, ev.ppl);
    assert.ok(Math.abs(ev.kl) < 1e-7, `self KL ${ev.kl}`);
    assert.equal(ev.top1Agree, 1);
  });

  test('the speed-ups (dequantized layers, system OpenBLAS) leave PPL and KL unchanged to 1e-4', () => {
    const out = join(tmp.dir, 'u4');
    assert.equal(swan(['quantize', STORIES, '-o', out, '--uniform', '--q-bits', '4']).status, 0);
    const run = (extra: string[]) => {
      const r = swan(['eval', out, '--text', TEXT, '--samples', '8', '--vs', STORIES, '--json', ...extra]);
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout);
    };
    const fast = run(['--dequantize', 'on']);
    const plain = run(['--dequantize', 'off', '--no-system-blas']);
    assert.equal(fast.protocol.dequantized, true);
    assert.equal(plain.protocol.dequantized, false);
    assert.equal(plain.protocol.blas, 'bundled');
    assert.ok(Math.abs(fast.ppl / plain.ppl - 1) < 1e-4, `fast ${fast.ppl} vs plain ${plain.ppl}`);
    assert.ok(Math.abs(fast.source.ppl / plain.source.ppl - 1) < 1e-4);
    assert.ok(Math.abs(fast.kl / plain.kl - 1) < 1e-4, `KL fast ${fast.kl} vs plain ${plain.kl}`);
    assert.ok(fast.kl > 0.01, 'a 4-bit model differs from its source: the comparison is not vacuous');
  });

  test('quantize --eval: uniform 8-bit has a small positive KL, and the numbers go into the model card', () => {
    const out = join(tmp.dir, 'u8');
    const r = swan(['quantize', STORIES, '-o', out, '--uniform', '--q-bits', '8', '--eval', TEXT, '--eval-samples', '8']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /eval tinystories-valid\.txt: PPL \d/);
    const card = readFileSync(join(out, 'README.md'), 'utf8');
    // | text | source PPL | PPL | ΔPPL | KL | top-1 |
    const row = /\| tinystories-valid\.txt \| ([\d.]+) \| ([\d.]+) \| ([+-][\d.]+) \| ([\d.]+) \| ([\d.]+)% \|/.exec(card);
    assert.ok(row, card);
    const [srcPpl, ppl, , kl, top1] = row.slice(1).map(Number) as [number, number, number, number, number];
    assert.ok(kl > 0 && kl < 0.01, `8-bit KL ${kl}`);
    assert.ok(Math.abs(ppl / srcPpl - 1) < 0.01, `8-bit PPL ${ppl} vs source ${srcPpl}`);
    assert.ok(top1 > 95, `top-1 agreement ${top1}%`);
    assert.match(card, /8 of 767 windows/);
    assert.ok(card.indexOf('## Results') < card.indexOf('## Use with mlx-lm'));
  });

  test('bad input: one-line errors, non-zero exit', () => {
    const r1 = swan(['eval', STORIES, '--text', join(tmp.dir, 'missing.txt')]);
    assert.equal(r1.status, 1);
    assert.match(r1.stderr, /^swan: error: .*missing\.txt: no such text file\n$/);
    const short = join(tmp.dir, 'short.txt');
    writeFileSync(short, 'Once upon a time.');
    const r2 = swan(['eval', STORIES, '--text', short, '-q']);
    assert.equal(r2.status, 1);
    assert.match(r2.stderr, /fewer than --seq-len 512/);
    assert.equal(r2.stderr.trim().split('\n').length, 1, r2.stderr);
  });
});
