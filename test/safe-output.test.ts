/**
 * Safe outputs (docs/reliability.md, "Outputs"): swan refuses an output path that would destroy the
 * input or files it did not write (the user's files stay byte for byte), lets one run at a time
 * write an output, and leaves no temporary sibling or lock behind a stopped run.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { SwanError } from '../src/errors.js';
import { OUTPUT_MARKER } from '../src/io/atomic-dir.js';
import { processAlive } from '../src/io/cleanup.js';
import { quantizeModel } from '../src/pipeline/quantize.js';
import { Rng } from '../src/rng.js';
import { writeSynthCheckpoint } from '../src/synth/checkpoint.js';
import { copyModel, swan, type CliResult } from './helpers/cli.js';
import { CLI, STORIES, tempDir } from './helpers/paths.js';
import { snapshot } from './helpers/tree.js';

const tmp = tempDir('swan-safe-out-');
after(() => tmp.cleanup());

let n = 0;
function caseDir(): string {
  const d = join(tmp.dir, `case-${n++}`);
  mkdirSync(d);
  return d;
}

/** A folder of the user's own files, nested and hidden ones included. */
function userFolder(dir: string): string {
  mkdirSync(join(dir, 'photos'), { recursive: true });
  writeFileSync(join(dir, 'notes.txt'), 'my notes\n');
  writeFileSync(join(dir, 'photos', 'cat.jpg'), Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7) & 255)));
  writeFileSync(join(dir, '.profile'), 'export X=1\n');
  return dir;
}

/** One line `swan: error: <path>: <problem>`, non-zero exit. */
function refused(r: CliResult, path: string, problem: RegExp): void {
  assert.notEqual(r.status, 0, 'non-zero exit');
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line, got:\n${r.stderr}`);
  assert.ok(lines[0]!.startsWith(`swan: error: ${path}: `), lines[0]);
  assert.match(lines[0]!, problem);
}

/** Temporary siblings and locks of swan in `dir`. */
function leftovers(dir: string): string[] {
  return readdirSync(dir).filter((f) => /\.swan-(tmp|lock)/.test(f));
}

const UNIFORM = ['--uniform', '--quiet'];

describe('--overwrite never removes what swan did not write', () => {
  test('-o <the input directory>: refused, the input byte for byte the same', () => {
    const root = caseDir();
    const model = copyModel(STORIES, join(root, 'model'));
    const before = snapshot(root);
    refused(swan(['quantize', model, '-o', model, '--overwrite', ...UNIFORM]), model, /is the input model directory/);
    refused(swan(['quantize', model, '-o', `${model}/.`, '--overwrite', ...UNIFORM]), model, /is the input model directory/);
    assert.deepEqual(snapshot(root), before);
  });

  test('-o <the parent of the input>: refused, the input and its siblings byte for byte the same', () => {
    const root = caseDir();
    const model = copyModel(STORIES, join(root, 'model'));
    copyModel(STORIES, join(root, 'other-model'));
    userFolder(root);
    const before = snapshot(root);
    refused(swan(['quantize', model, '-o', root, '--overwrite', ...UNIFORM]), root, /contains the input model directory/);
    assert.deepEqual(snapshot(root), before);
  });

  test("-o . (the working directory, which holds the input): refused, the directory byte for byte the same", () => {
    const root = caseDir();
    copyModel(STORIES, join(root, 'model'));
    userFolder(root);
    const before = snapshot(root);
    const cwd = realpathSync.native(root); // what the child's process.cwd() says
    refused(swan(['quantize', 'model', '-o', '.', '--overwrite', ...UNIFORM], { cwd: root }), cwd, /contains the input model directory model/);
    assert.deepEqual(snapshot(root), before);
  });

  test('-o <a folder of the user files> (and -o . inside it): refused, every file byte for byte the same', () => {
    const root = caseDir();
    const folder = userFolder(join(root, 'my-files'));
    const before = snapshot(root);
    for (const overwrite of [['--overwrite'], []]) {
      refused(swan(['quantize', STORIES, '-o', folder, ...overwrite, ...UNIFORM]), folder, /has no \.swan-output marker \(swan did not write it\)/);
    }
    const cwd = realpathSync.native(folder);
    refused(swan(['quantize', STORIES, '-o', '.', '--overwrite', ...UNIFORM], { cwd: folder }), cwd, /has no \.swan-output marker/);
    assert.deepEqual(snapshot(root), before);
  });

  test('-o inside the input, also through a linked ancestor: refused, nothing created in the input', () => {
    const root = caseDir();
    const model = copyModel(STORIES, join(root, 'model'));
    symlinkSync(model, join(root, 'link'));
    const before = snapshot(root);
    refused(swan(['quantize', model, '-o', join(model, 'mlx'), ...UNIFORM]), join(model, 'mlx'), /is inside the input model directory/);
    refused(swan(['quantize', model, '-o', join(root, 'link', 'mlx'), ...UNIFORM]), join(root, 'link', 'mlx'), /is inside the input model directory/);
    // the input named through the link, the output by its real path
    refused(swan(['quantize', join(root, 'link'), '-o', root, '--overwrite', ...UNIFORM]), root, /contains the input model directory/);
    assert.deepEqual(snapshot(root), before);
  });

  test('a symbolic link as the output is neither followed nor replaced', () => {
    const root = caseDir();
    const out = join(root, 'out');
    assert.equal(swan(['quantize', STORIES, '-o', out, ...UNIFORM]).status, 0);
    userFolder(join(root, 'mine'));
    symlinkSync(out, join(root, 'to-output'));
    symlinkSync(join(root, 'mine'), join(root, 'to-mine'));
    const before = snapshot(root);
    for (const link of ['to-output', 'to-mine']) {
      refused(swan(['quantize', STORIES, '-o', join(root, link), '--overwrite', ...UNIFORM]), join(root, link), /is a symbolic link/);
    }
    assert.deepEqual(snapshot(root), before);
  });

  test("swan's output with a file the user added: refused, the file and the output kept", () => {
    const root = caseDir();
    const out = join(root, 'out');
    assert.equal(swan(['quantize', STORIES, '-o', out, ...UNIFORM]).status, 0);
    writeFileSync(join(out, 'my-eval.txt'), 'ppl 12.3\n');
    const before = snapshot(root);
    refused(swan(['quantize', STORIES, '-o', out, '--overwrite', ...UNIFORM]), out, /holds my-eval\.txt, which swan did not write/);
    assert.deepEqual(snapshot(root), before);
  });

  test("--overwrite replaces swan's own output (its marker lists every file), leaving nothing beside it", () => {
    const root = caseDir();
    const out = join(root, 'out');
    assert.equal(swan(['quantize', STORIES, '-o', out, '--q-bits', '4', ...UNIFORM]).status, 0);
    writeFileSync(join(out, '.DS_Store'), 'finder'); // what macOS Finder adds to any folder it shows
    const r = swan(['quantize', STORIES, '-o', out, '--q-bits', '8', '--overwrite', ...UNIFORM]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).quantization.bits, 8);
    const marker = JSON.parse(readFileSync(join(out, OUTPUT_MARKER), 'utf8')) as { files: string[] };
    assert.deepEqual([...marker.files, OUTPUT_MARKER].sort(), readdirSync(out).sort());
    assert.deepEqual(readdirSync(root), ['out']);
  });
});

describe('one run at a time per output', () => {
  test('a lock held by a running process fails the second run at once, before any analysis', () => {
    const root = caseDir();
    const out = join(root, 'out');
    const lock = join(root, '.out.swan-lock');
    writeFileSync(lock, `${process.pid}\n`); // this test process is alive
    let analysed = 0;
    assert.throws(
      () => quantizeModel(STORIES, out, { strategy: 'thresholds', onAnalyze: () => analysed++ }),
      (e: unknown) => e instanceof SwanError && e.where === out && new RegExp(`another swan run \\(process ${process.pid}\\)`).test(e.problem),
    );
    assert.equal(analysed, 0, 'no tensor analysed');
    assert.equal(readFileSync(lock, 'utf8'), `${process.pid}\n`, 'the other run keeps its lock');
    assert.deepEqual(readdirSync(root), ['.out.swan-lock']);
  });

  test('a lock and a temporary sibling left by a dead process are taken over, with a notice', () => {
    const root = caseDir();
    const out = join(root, 'out');
    const dead = deadPid();
    writeFileSync(join(root, '.out.swan-lock'), `${dead}\n`);
    mkdirSync(join(root, `.out.swan-tmp-${dead}`));
    writeFileSync(join(root, `.out.swan-tmp-${dead}`, 'model.safetensors'), 'partial');
    const notices: string[] = [];
    quantizeModel(STORIES, out, { strategy: 'uniform', onNotice: (l) => notices.push(l) });
    assert.deepEqual(readdirSync(root), ['out']);
    assert.equal(notices.length, 2, notices.join('\n'));
    assert.match(notices[0]!, new RegExp(`took over .*\\.out\\.swan-lock, left by swan process ${dead}, which is no longer running`));
    assert.match(notices[1]!, new RegExp(`removed .*\\.out\\.swan-tmp-${dead}, left by swan process ${dead}`));
  });
});

/** A PID that belonged to a process that has exited. */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', '0']).pid!;
}

interface Exit {
  status: number | null;
  stderr: string;
}

/** Start the CLI without waiting; `exit` resolves when it has ended. */
function start(args: string[], detached = false): { proc: ChildProcess; exit: Promise<Exit> } {
  const proc = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'], detached });
  let stderr = '';
  proc.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const exit = new Promise<Exit>((res) => proc.on('close', (status) => res({ status, stderr })));
  return { proc, exit };
}

async function until<T>(what: string, probe: () => T | undefined, ms = 60_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(3);
  }
}

/** The temporary sibling of `out` in `root` (its name carries the working process's PID). */
function tempOf(root: string): string | undefined {
  return readdirSync(root).find((f) => f.startsWith('.out.swan-tmp-'));
}

describe('real runs: concurrency and signals', () => {
  // Big enough that writing takes a few seconds here (the search rounding in the TypeScript backend is
  // the slow part: the native one writes this in a blink), small enough to generate in about one.
  const model = join(tmp.dir, 'synth');
  const SLOW = ['--uniform', '--rounding', 'search', '--backend', 'js', '--quiet'];
  let shardBytes = 0;
  before(() => {
    writeSynthCheckpoint(model, { modelType: 'llama', hidden: 256, intermediate: 512, layers: 2, heads: 8, kvHeads: 4, headDim: 32, vocab: 2048, tied: true });
    const root = caseDir();
    const r = swan(['quantize', model, '-o', join(root, 'out'), ...SLOW]);
    assert.equal(r.status, 0, r.stderr);
    shardBytes = readFileSync(join(root, 'out', 'model.safetensors')).length;
  });

  /** Start a slow quantize to `<root>/out` and wait until it writes; `pid`: the working process (named in its temporary sibling). */
  async function startWriting(root: string, detached = false) {
    const run = start(['quantize', model, '-o', join(root, 'out'), ...SLOW], detached);
    const tmpName = await until('the temporary sibling', () => tempOf(root));
    return { ...run, tmpName, pid: Number(tmpName.slice('.out.swan-tmp-'.length)) };
  }

  test('the second of two concurrent runs to one output fails at once; the first finishes', async () => {
    const root = caseDir();
    const out = join(root, 'out');
    const first = await startWriting(root);
    // thresholds: the second run would analyse for a while if it did not fail first
    const t0 = Date.now();
    const second = swan(['quantize', model, '-o', out, '--overwrite', '--quiet']);
    const seconds = (Date.now() - t0) / 1000;
    assert.equal(first.proc.exitCode, null, 'the first run is still writing');
    refused(second, out, new RegExp(`another swan run \\(process ${first.pid}\\) is writing this output`));
    assert.ok(seconds < 5, `failed after ${seconds} s`);
    const done = await first.exit;
    assert.equal(done.status, 0, done.stderr);
    assert.equal(readFileSync(join(out, 'model.safetensors')).length, shardBytes);
    assert.deepEqual(leftovers(root), []);
  });

  test('SIGINT/SIGTERM/SIGHUP at 5 seeded moments of the write: exit 128+n, no temporary sibling, no lock, no output', async () => {
    const rng = new Rng(20260518);
    const codes = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 } as const;
    const signals = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGINT', 'SIGTERM'] as const;
    for (const sig of signals) {
      const root = caseDir();
      // A moment of the write: when the partial shard holds this fraction of its final bytes.
      const fraction = 0.9 * rng.uniform();
      // SIGINT to the process group, as a terminal's Ctrl-C; the others to the CLI's process only, as `kill` does.
      const run = await startWriting(root, sig === 'SIGINT');
      await until(`${(fraction * 100).toFixed(0)}% of the shard`, () => {
        try {
          return readFileSync(join(root, run.tmpName, 'model.safetensors')).length >= fraction * shardBytes;
        } catch {
          return false;
        }
      });
      if (sig === 'SIGINT') process.kill(-run.proc.pid!, sig);
      else run.proc.kill(sig);
      const r = await run.exit;
      assert.equal(r.status, codes[sig], `${sig} at ${fraction.toFixed(2)}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`swan: stopped by ${sig}`));
      assert.deepEqual(readdirSync(root), [], `${sig} at ${fraction.toFixed(2)} of the write`);
    }
  });

  test('the working process killed (SIGKILL, as the OOM killer does): its temporary sibling and lock removed, exit 137', async () => {
    const root = caseDir();
    const run = await startWriting(root);
    process.kill(run.pid, 'SIGKILL');
    const r = await run.exit;
    assert.equal(r.status, 137, r.stderr);
    assert.deepEqual(readdirSync(root), []);
  });

  test('both processes killed: the next run removes the leftovers with a notice and writes the output', async () => {
    const root = caseDir();
    const out = join(root, 'out');
    const run = await startWriting(root);
    const { pid, tmpName: name } = run;
    const parentGone = new Promise((res) => run.proc.once('exit', res));
    run.proc.kill('SIGKILL');
    await parentGone;
    process.kill(pid, 'SIGKILL');
    await until('the working process to die', () => !processAlive(pid));
    assert.deepEqual(leftovers(root).sort(), ['.out.swan-lock', name], 'what a killed run leaves without its parent');
    const next = swan(['quantize', model, '-o', out, '--uniform', '--quiet']);
    assert.equal(next.status, 0, next.stderr);
    assert.match(next.stderr, new RegExp(`swan: notice: took over .*\\.out\\.swan-lock, left by swan process ${pid}, which is no longer running`));
    assert.match(next.stderr, new RegExp(`swan: notice: removed .*${name.replace(/\./g, '\\.')}, left by swan process ${pid}`));
    assert.deepEqual(readdirSync(root), ['out']);
  });
});

describe('temporary files of analyze -o and report -o', () => {
  // A file-size limit makes the write fail part-way (EFBIG), as a full disk does (ENOSPC).
  function limited(args: string[]): CliResult {
    const r = spawnSync('bash', ['-c', 'trap "" XFSZ; ulimit -f 8; exec "$@"', 'bash', process.execPath, CLI, ...args], { encoding: 'utf8' });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  test("a killed run's temporary file is removed by the next write, with a notice; a write that fails part-way leaves no file", () => {
    const root = caseDir();
    const dead = deadPid();
    writeFileSync(join(root, `.m.json.swan-tmp-${dead}`), '{"half');
    const manifest = join(root, 'm.json');
    const r = swan(['analyze', STORIES, '-o', manifest, '-q', '--no-search-errors']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`swan: notice: removed .*\\.m\\.json\\.swan-tmp-${dead}, left by swan process ${dead}`));
    assert.deepEqual(readdirSync(root), ['m.json']);
    const before = snapshot(root);
    const other = join(root, 'm2.json');
    refused(limited(['analyze', STORIES, '-o', other, '-q', '--no-search-errors']), other, /cannot write: EFBIG/);
    const html = join(root, 'r.html');
    refused(limited(['report', manifest, '-o', html]), html, /cannot write: EFBIG/);
    assert.deepEqual(snapshot(root), before, 'no file and no temporary file added');
  });
});

describe('single-file outputs never replace a file swan did not write', () => {
  test('analyze -o and report -o refuse a user file (and a link), replace their own', () => {
    const dir = caseDir();
    const model = copyModel(STORIES, join(dir, 'model'));
    const link = join(dir, 'link.json');
    symlinkSync(join(model, 'config.json'), link);
    const manifest = join(dir, 'm.json');
    assert.equal(swan(['analyze', model, '-q', '--no-search-errors', '-o', manifest]).status, 0);
    const before = snapshot(dir);
    for (const [args, target] of [
      [['analyze', model, '-q', '--no-search-errors', '-o'], join(model, 'config.json')],
      [['analyze', model, '-q', '--no-search-errors', '-o'], join(model, 'tokenizer.json')],
      [['report', manifest, '-o'], join(model, 'config.json')],
    ] as [string[], string][]) {
      const r = swan([...args, target]);
      assert.equal(r.status, 1, r.stderr);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, /exists and is not a file swan wrote/);
    }
    assert.match(swan(['analyze', model, '-q', '--no-search-errors', '-o', link]).stderr, /exists and is not a file swan wrote \(a link\)/);
    assert.deepEqual(snapshot(dir), before, "the user's files are unchanged");

    for (let i = 0; i < 2; i++) assert.equal(swan(['analyze', model, '-q', '--no-search-errors', '-o', manifest]).status, 0, 'a manifest swan wrote is replaced');
    const html = join(dir, 'r.html');
    for (let i = 0; i < 2; i++) assert.equal(swan(['report', manifest, '-o', html]).status, 0, 'a report swan wrote is replaced');
  });
});
