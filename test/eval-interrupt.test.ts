/**
 * Ctrl-C on `swan eval` stops its Python worker at once: a SIGINT to the terminal's process group
 * (Ctrl-C) or to swan's process alone (`kill -INT`) leaves no mlx_eval.py process behind.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Rng } from '../src/rng.js';
import { CLI, STORIES, tempDir } from './helpers/paths.js';

const skip = process.env.SWAN_SKIP_PYTHON ? 'SWAN_SKIP_PYTHON is set' : process.platform !== 'linux' ? 'reads /proc (Linux only)' : false;

const tmp = tempDir();
after(() => tmp.cleanup());

/** PIDs of the processes whose command line holds every one of `parts`. */
function processesWith(...parts: string[]): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8');
      if (parts.every((p) => cmd.includes(p))) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

async function until<T>(what: string, probe: () => T | undefined | false, ms: number): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(20);
  }
}

describe('Ctrl-C on swan eval', { skip }, () => {
  // A text long enough that scoring every window takes far longer than the test waits (not an
  // evaluation text: seeded words).
  const text = join(tmp.dir, 'long-text.txt');
  const rng = new Rng(7);
  const words = ['the', 'little', 'dog', 'ran', 'to', 'a', 'big', 'tree', 'and', 'she', 'said', 'hello', 'once', 'upon', 'time', 'happy'];
  const parts: string[] = [];
  for (let i = 0; i < 400_000; i++) parts.push(words[Math.floor(rng.uniform() * words.length)]!);
  writeFileSync(text, parts.join(' ') + '\n');

  for (const to of ['group', 'swan'] as const) {
    test(`SIGINT to ${to === 'group' ? 'the process group (a terminal\'s Ctrl-C)' : 'swan\'s process alone (kill -INT)'}: exit 130, no worker left`, async () => {
      const proc = spawn(process.execPath, [CLI, 'eval', STORIES, '--text', text, '--samples', '0', '-q'], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
      let stderr = '';
      proc.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
      const exit = new Promise<number | null>((res) => proc.on('close', (code) => res(code)));
      const [worker] = await until('the Python worker', () => {
        const w = processesWith('mlx_eval.py', text);
        return w.length ? w : undefined;
      }, 60_000);
      await sleep(1500); // into its work: imports, tokenizing, scoring
      assert.ok(processesWith('mlx_eval.py', text).includes(worker!), 'the worker is running when the signal comes');
      const t0 = Date.now();
      if (to === 'group') process.kill(-proc.pid!, 'SIGINT');
      else proc.kill('SIGINT');
      assert.equal(await exit, 130, stderr);
      await until('no worker process', () => processesWith('mlx_eval.py', text).length === 0, 2000);
      const seconds = (Date.now() - t0) / 1000;
      assert.ok(seconds < 3, `the worker outlived the signal by ${seconds} s`);
      assert.match(stderr, /swan: stopped by SIGINT/);
    });
  }
});
