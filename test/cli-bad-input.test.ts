/**
 * f) Bad input through the CLI: a one-line error naming the file and the problem, a non-zero exit,
 * and no output directory (nor a temporary sibling) left behind.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
  writeSync,
  readFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { MAX_NAME_BYTES, MAX_RANK, MAX_TENSORS } from '../src/io/safetensors.js';
import { copyModel, rewriteHeader, swan } from './helpers/cli.js';
import { CLI, STORIES, tempDir } from './helpers/paths.js';

const tmp = tempDir();
after(() => tmp.cleanup());

let n = 0;
function damaged(edit: (dir: string) => void): string {
  const dir = copyModel(STORIES, join(tmp.dir, `bad-${n++}`));
  edit(dir);
  return dir;
}

function expectFailure(dir: string, fileRe: RegExp, problemRe: RegExp): void {
  const out = join(tmp.dir, `out-${n++}`);
  const r = swan(['quantize', dir, '-o', out, '--uniform', '--quiet']);
  assert.notEqual(r.status, 0);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `expected one line, got:\n${r.stderr}`);
  assert.match(lines[0]!, /^swan: error: /);
  assert.match(lines[0]!, fileRe);
  assert.match(lines[0]!, problemRe);
  assert.equal(existsSync(out), false, 'output directory must not exist');
  assert.deepEqual(readdirSync(tmp.dir).filter((f) => f.includes('swan-tmp')), [], 'no temporary sibling left');
}

const ST = /model\.safetensors/;

describe('bad input', () => {
  test('truncated safetensors file', () => {
    const dir = damaged((d) => {
      const f = join(d, 'model.safetensors');
      truncateSync(f, statSync(f).size - 1000);
    });
    expectFailure(dir, ST, /trunc|beyond|past|end/i);
  });

  test('header length past the end of the file', () => {
    const dir = damaged((d) => {
      const f = join(d, 'model.safetensors');
      const buf = readFileSync(f);
      buf.writeBigUInt64LE(BigInt(buf.length + 10), 0);
      writeFileSync(f, buf);
    });
    expectFailure(dir, ST, /header/i);
  });

  test('overlapping offsets', () => {
    const dir = damaged((d) =>
      rewriteHeader(join(d, 'model.safetensors'), (h) => {
        // two tensors of the same byte size: point the second at the first one's bytes
        h['model.layers.0.post_attention_layernorm.weight'].data_offsets = [...h['model.layers.0.input_layernorm.weight'].data_offsets];
      }),
    );
    expectFailure(dir, ST, /overlap|gap/i);
  });

  test('offsets out of range', () => {
    const dir = damaged((d) =>
      rewriteHeader(join(d, 'model.safetensors'), (h) => {
        const t = h['model.norm.weight'];
        t.data_offsets = [t.data_offsets[0] + 10_000_000, t.data_offsets[1] + 10_000_000];
      }),
    );
    expectFailure(dir, ST, /beyond|out of range|past|end/i);
  });

  test('dtype / shape / byte-count mismatch', () => {
    const dir = damaged((d) =>
      rewriteHeader(join(d, 'model.safetensors'), (h) => {
        h['model.norm.weight'].shape = [65];
      }),
    );
    expectFailure(dir, ST, /model\.norm\.weight.*(bytes|size)|(bytes|size).*model\.norm\.weight/i);
  });

  test('unsupported dtype', () => {
    const dir = damaged((d) =>
      rewriteHeader(join(d, 'model.safetensors'), (h) => {
        h['model.norm.weight'].dtype = 'Q4_K';
      }),
    );
    expectFailure(dir, ST, /dtype/i);
  });

  test('integer tensor dtype that swan cannot quantize', () => {
    const dir = damaged((d) =>
      rewriteHeader(join(d, 'model.safetensors'), (h) => {
        // 64 bf16 values = 128 bytes = 32 int32 values
        h['model.norm.weight'].dtype = 'I32';
        h['model.norm.weight'].shape = [32];
      }),
    );
    expectFailure(dir, ST, /I32/);
  });

  test('weight_map entry pointing outside the model directory', () => {
    const dir = damaged((d) => {
      const header = readFileSync(join(d, 'model.safetensors'));
      const n = Number(header.readBigUInt64LE(0));
      const names = Object.keys(JSON.parse(header.subarray(8, 8 + n).toString())).filter((k) => k !== '__metadata__');
      const map: Record<string, string> = Object.fromEntries(names.map((k) => [k, 'model.safetensors']));
      map['model.norm.weight'] = '../outside/model.safetensors';
      writeFileSync(join(d, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: map }));
    });
    expectFailure(dir, /model\.safetensors\.index\.json/, /outside|\.\./i);
  });

  test('missing config.json', () => {
    const dir = damaged((d) => rmSync(join(d, 'config.json')));
    expectFailure(dir, /config\.json/, /missing|not found|no such|does not exist/i);
  });

  test('unsupported model_type', () => {
    const dir = damaged((d) => {
      const c = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8'));
      c.model_type = 'gpt_bigcode';
      writeFileSync(join(d, 'config.json'), JSON.stringify(c));
    });
    expectFailure(dir, /config\.json/, /gpt_bigcode.*not supported/);
  });

  test('model directory that does not exist', () => {
    expectFailure(join(tmp.dir, 'nope'), /nope/, /not exist|no such|missing|not a directory/i);
  });

  test('existing output directory is refused, and not touched', () => {
    const out = join(tmp.dir, 'existing');
    const r1 = swan(['quantize', STORIES, '-o', out, '--uniform', '--quiet']);
    assert.equal(r1.status, 0, r1.stderr);
    const before = readFileSync(join(out, 'config.json'), 'utf8');
    const r2 = swan(['quantize', STORIES, '-o', out, '--uniform', '--quiet']);
    assert.notEqual(r2.status, 0);
    assert.match(r2.stderr, /already exists/);
    assert.equal(readFileSync(join(out, 'config.json'), 'utf8'), before);
  });
});

test('a temporary sibling left by a killed run is cleaned up by the next run', () => {
  const out = join(tmp.dir, 'after-kill');
  const stale = join(tmp.dir, '.after-kill.swan-tmp-999999');
  mkdirSync(stale);
  const r = swan(['quantize', STORIES, '-o', out, '--uniform', '--quiet']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(existsSync(stale), false);
  assert.ok(existsSync(join(out, 'config.json')));
});

/** Every file under `dir`, recursively. */
function allFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? allFiles(join(dir, e.name)) : [join(dir, e.name)]));
}

describe('files outside the model directory are never copied', () => {
  test('LICENSE, tokenizer.json and foo.py symlinked to a secret outside: skipped with a warning each, the secret is nowhere in the output', () => {
    const secretBytes = `SECRET-${randomBytes(16).toString('hex')}\n`;
    const secret = join(tmp.dir, 'secret.txt');
    writeFileSync(secret, secretBytes);
    const dir = damaged((d) => {
      rmSync(join(d, 'tokenizer.json'));
      for (const f of ['LICENSE', 'tokenizer.json', 'foo.py']) symlinkSync(secret, join(d, f));
      // a link that stays inside the directory is followed, as before
      symlinkSync('LICENSE-NOTE.txt', join(d, 'LICENSE-inside'));
      // a directory named like a copied file is skipped too
      mkdirSync(join(d, 'bar.py'));
    });
    const out = join(tmp.dir, `out-${n++}`);
    const r = swan(['quantize', dir, '-o', out, '--uniform', '--quiet']);
    assert.equal(r.status, 0, r.stderr);
    for (const f of allFiles(out)) assert.ok(!readFileSync(f).includes(secretBytes.trim()), `${f} holds the secret`);
    assert.deepEqual(
      r.stderr.trimEnd().split('\n'),
      [
        `swan: warning: ${join(dir, 'LICENSE')}: not copied: symlink points outside the model directory (${secret})`,
        `swan: warning: ${join(dir, 'bar.py')}: not copied: not a regular file (a directory)`,
        `swan: warning: ${join(dir, 'foo.py')}: not copied: symlink points outside the model directory (${secret})`,
        `swan: warning: ${join(dir, 'tokenizer.json')}: not copied: symlink points outside the model directory (${secret})`,
      ],
    );
    for (const f of ['LICENSE', 'tokenizer.json', 'foo.py', 'bar.py']) assert.equal(existsSync(join(out, f)), false, f);
    assert.deepEqual(readFileSync(join(out, 'LICENSE-inside')), readFileSync(join(STORIES, 'LICENSE-NOTE.txt')));
    assert.deepEqual(readFileSync(join(out, 'tokenizer_config.json')), readFileSync(join(STORIES, 'tokenizer_config.json')));
  });

  test('generation_config.json symlinked outside is neither read (eos_token_id) nor copied', () => {
    const gen = join(tmp.dir, 'outside-generation_config.json');
    writeFileSync(gen, JSON.stringify({ eos_token_id: 424242 }));
    const dir = damaged((d) => {
      rmSync(join(d, 'generation_config.json'));
      symlinkSync(gen, join(d, 'generation_config.json'));
    });
    const out = join(tmp.dir, `out-${n++}`);
    const r = swan(['quantize', dir, '-o', out, '--uniform', '--quiet']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /generation_config\.json: not copied: symlink points outside the model directory/);
    assert.equal(existsSync(join(out, 'generation_config.json')), false);
    assert.doesNotMatch(readFileSync(join(out, 'config.json'), 'utf8'), /424242/);
  });

  test('HF hub cache layout: files symlinked into ../../blobs are copied', () => {
    const repo = join(tmp.dir, 'models--x--stories');
    const snap = join(repo, 'snapshots', 'rev1');
    mkdirSync(join(repo, 'blobs'), { recursive: true });
    mkdirSync(snap, { recursive: true });
    for (const f of readdirSync(STORIES)) {
      copyFileSync(join(STORIES, f), join(repo, 'blobs', `blob-${f}`));
      symlinkSync(`../../blobs/blob-${f}`, join(snap, f));
    }
    const out = join(tmp.dir, `out-${n++}`);
    const r = swan(['quantize', snap, '-o', out, '--uniform', '--quiet']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.deepEqual(readFileSync(join(out, 'tokenizer.json')), readFileSync(join(STORIES, 'tokenizer.json')));
  });
});

/** Run the CLI with a kill timeout, so a hang fails the test instead of stalling it. */
function timedSwan(args: string[], nodeArgs: string[] = []): { status: number | null; stderr: string; ms: number } {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [...nodeArgs, CLI, ...args], { encoding: 'utf8', timeout: 20_000, killSignal: 'SIGKILL' });
  return { status: r.status, stderr: r.stderr, ms: Date.now() - t0 };
}

describe('FIFOs are refused before they are opened', { skip: process.platform === 'win32' }, () => {
  const fifoIn = (d: string, f: string) => {
    rmSync(join(d, f), { force: true });
    execFileSync('mkfifo', [join(d, f)]);
  };

  for (const f of ['config.json', 'model.safetensors']) {
    test(`${f} as a FIFO: one error line naming it, within 2 s`, () => {
      const dir = damaged((d) => fifoIn(d, f));
      const out = join(tmp.dir, `out-${n++}`);
      const r = timedSwan(['quantize', dir, '-o', out, '--uniform', '--quiet']);
      assert.notEqual(r.status, 0);
      assert.equal(r.stderr, `swan: error: ${join(dir, f)}: not a regular file (a FIFO)\n`);
      assert.ok(r.ms < 2000, `${r.ms} ms`);
      assert.equal(existsSync(out), false);
    });
  }

  test('tokenizer.json as a FIFO: not copied, one warning line naming it, within 2 s', () => {
    const dir = damaged((d) => fifoIn(d, 'tokenizer.json'));
    const out = join(tmp.dir, `out-${n++}`);
    const r = timedSwan(['quantize', dir, '-o', out, '--uniform', '--quiet']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, `swan: warning: ${join(dir, 'tokenizer.json')}: not copied: not a regular file (a FIFO)\n`);
    assert.ok(r.ms < 2000, `${r.ms} ms`);
    assert.equal(existsSync(join(out, 'tokenizer.json')), false);
    assert.ok(existsSync(join(out, 'tokenizer_config.json')));
  });

  test('--manifest as a FIFO: one error line naming it, within 2 s', () => {
    const fifo = join(tmp.dir, `manifest-fifo-${n++}`);
    execFileSync('mkfifo', [fifo]);
    const out = join(tmp.dir, `out-${n++}`);
    const r = timedSwan(['quantize', STORIES, '-o', out, '--manifest', fifo, '--quiet']);
    assert.notEqual(r.status, 0);
    assert.equal(r.stderr, `swan: error: ${fifo}: not a regular file (a FIFO)\n`);
    assert.ok(r.ms < 2000, `${r.ms} ms`);
    assert.equal(existsSync(out), false);
  });
});

/**
 * model.safetensors with a hostile header built piece by piece (never one big string): the 8-byte
 * length, then `pieces`.
 */
function hostileModel(pieces: Iterable<string>): string {
  const dir = damaged((d) => rmSync(join(d, 'model.safetensors')));
  const fd = openSync(join(dir, 'model.safetensors'), 'w');
  let len = 0;
  writeSync(fd, Buffer.alloc(8));
  for (const p of pieces) len += writeSync(fd, Buffer.from(p));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(len));
  writeSync(fd, prefix, 0, 8, 0);
  closeSync(fd);
  assert.ok(len < 100_000_000, `${len}-byte header`);
  return dir;
}

describe('oversized headers under the 100 MB cap are refused quickly, in bounded memory', () => {
  // A heap far below what parsing these headers took (2–4 GB): exceeding it aborts the process.
  const heap = ['--max-old-space-size=192'];

  function expectLimit(dir: string, problem: RegExp): void {
    const out = join(tmp.dir, `out-${n++}`);
    const r = timedSwan(['quantize', dir, '-o', out, '--uniform', '--quiet'], heap);
    try {
      assert.equal(r.status, 1, r.stderr);
      const lines = r.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.ok(lines[0]!.startsWith(`swan: error: ${join(dir, 'model.safetensors')}: `), lines[0]);
      assert.match(lines[0]!, problem);
      assert.ok(r.ms < 5000, `${r.ms} ms`);
      assert.equal(existsSync(out), false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  test('a shape of 45 million dimensions', () => {
    const dir = hostileModel(
      (function* () {
        yield '{"model.norm.weight":{"dtype":"BF16","data_offsets":[0,0],"shape":[';
        for (let i = 0; i < 45; i++) yield '1,'.repeat(1_000_000);
        yield '0]}}';
      })(),
    );
    expectLimit(dir, new RegExp(`tensor "model\\.norm\\.weight": "shape" has more than ${MAX_RANK} entries, over the limit of ${MAX_RANK}`));
  });

  test('a tensor name of 1 MB', () => {
    const dir = hostileModel(['{"', 'n'.repeat(1 << 20), '":{"dtype":"BF16","shape":[0],"data_offsets":[0,0]}}']);
    expectLimit(dir, new RegExp(`tensor name "n{20,}"… is longer than ${MAX_NAME_BYTES} bytes, the limit for names`));
  });

  test('1.6 million empty tensors', () => {
    const dir = hostileModel(
      (function* () {
        yield '{"__metadata__":{"format":"pt"}';
        for (let b = 0; b < 16; b++) {
          const part: string[] = [];
          for (let i = b * 100_000; i < (b + 1) * 100_000; i++) part.push(`,"${i}":{"dtype":"BF16","shape":[0],"data_offsets":[0,0]}`);
          yield part.join('');
        }
        yield '}';
      })(),
    );
    expectLimit(dir, new RegExp(`header has more than ${MAX_TENSORS} tensors, over the limit of ${MAX_TENSORS} per file`));
  });
});
