/**
 * Hub in, Hub out, against a local Hub server (test/helpers/hub-server.ts) on 127.0.0.1 and the
 * real Python huggingface_hub: the cache swan writes is the one Python reads, and the reverse;
 * resume, hash refusal, one-line 401/403/404, --revision, --upload-repo with the card's metadata.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, readlinkSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { venvPython } from '../src/python.js';
import { GOOD_TOKEN, HubServer, UNGRANTED_TOKEN } from './helpers/hub-server.js';
import { CLI, FIXTURES, PY, STORIES, tempDir } from './helpers/paths.js';

const SKIP_PY = process.env.SWAN_SKIP_PYTHON === '1';
const REPO_ID = 'swan-test/stories260K';

/** Run the CLI without blocking this process (the Hub server lives in it). */
function swanAsync(args: string[], env: NodeJS.ProcessEnv): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((ok) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, HF_TOKEN: '', HF_HUB_OFFLINE: '', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('close', (status) => ok({ status, stdout, stderr }));
  });
}

/** Python's huggingface_hub (test/py/hf_cache.py), also without blocking. */
function python(args: string[], env: NodeJS.ProcessEnv): Promise<{ dir: string; files: Record<string, string> }> {
  const py = venvPython();
  return new Promise((ok, fail) => {
    const child = spawn(py, [join(PY, 'hf_cache.py'), ...args], { env: { ...process.env, HF_TOKEN: '', ...env } });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('close', (code) => (code === 0 ? ok(JSON.parse(out)) : fail(new Error(`hf_cache.py ${args.join(' ')}: ${err.slice(-2000)}`))));
  });
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Every file of a flat directory → sha256 of its content. */
function hashes(dir: string, only?: (f: string) => boolean): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of readdirSync(dir).sort()) if (!only || only(f)) out[f] = sha256(readFileSync(join(dir, f)));
  return out;
}

function oneErrorLine(stderr: string, pattern: RegExp): void {
  const lines = stderr.trim().split('\n');
  assert.equal(lines.length, 1, stderr);
  assert.match(lines[0]!, /^swan: error: /);
  assert.match(lines[0]!, pattern);
}

const WANTED = (f: string) => /\.(json|safetensors)$/.test(f);

describe('Hub models through a local Hub server', () => {
  const hub = new HubServer();
  let url = '';
  let mainSha = '';
  let v1Sha = '';
  const tmp = tempDir('swan-hub-');
  before(async () => {
    url = await hub.start();
    mainSha = hub.addRepoFromDir(REPO_ID, STORIES, { edit: (f) => f.set('README.md', Buffer.from('---\nlicense: mit\ntags:\n- tiny\n---\n# stories260K\n')) });
    // A second revision with other weights (float16; main is bfloat16), to tell the snapshots apart.
    v1Sha = hub.addRepoFromDir(REPO_ID, join(FIXTURES, 'stories260K-f16'), { branch: 'v1' });
    hub.addRepoFromDir('swan-test/private', STORIES, { private: true });
    hub.addRepoFromDir('swan-test/gated', STORIES, { gated: true });
  });
  after(async () => {
    await hub.stop();
    tmp.cleanup();
  });
  const env = (cache: string, extra: NodeJS.ProcessEnv = {}) => ({ HF_ENDPOINT: url, HF_HUB_CACHE: cache, ...extra });

  test('download into the HF cache layout; Python huggingface_hub reads it offline and finds the same files', { skip: SKIP_PY ? 'SWAN_SKIP_PYTHON=1' : false }, async () => {
    const cache = join(tmp.dir, 'cache-a');
    const r = await swanAsync(['inspect', REPO_ID, '--json'], env(cache));
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).model_type, 'llama');
    const repo = join(cache, 'models--swan-test--stories260K');
    assert.equal(readFileSync(join(repo, 'refs', 'main'), 'utf8'), mainSha);
    const snap = join(repo, 'snapshots', mainSha);
    // Relative links into blobs named by content: the LFS sha256 for the weights.
    const weights = readFileSync(join(STORIES, 'model.safetensors'));
    assert.equal(readlinkSync(join(snap, 'model.safetensors')), `../../blobs/${sha256(weights)}`);
    assert.deepEqual(
      readdirSync(snap).sort(),
      ['LICENSE-NOTE.txt', 'LICENSE-llama2.c.txt', 'README.md', 'config.json', 'generation_config.json', 'model.safetensors', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json'],
      'only what a conversion needs and copies (no SOURCE.md)',
    );
    const py = await python(['offline', REPO_ID, 'main'], { HF_HUB_CACHE: cache, HF_HUB_OFFLINE: '1' });
    assert.equal(realpathSync(py.dir), realpathSync(snap));
    const expected = hashes(STORIES, (f) => readdirSync(snap).includes(f));
    expected['README.md'] = sha256(readFileSync(join(snap, 'README.md')));
    assert.deepEqual(py.files, expected);

    // Second run: served from the cache, no resolve request.
    const before = hub.requests.length;
    const again = await swanAsync(['inspect', REPO_ID, '--json'], env(cache));
    assert.equal(again.status, 0, again.stderr);
    assert.equal(hub.requests.length, before, 'a complete cached snapshot needs no network');
  });

  test('a cache written by Python huggingface_hub is used offline; quantize org/name == the local path, byte for byte', { skip: SKIP_PY ? 'SWAN_SKIP_PYTHON=1' : false }, async () => {
    const cache = join(tmp.dir, 'cache-py');
    const py = await python(['download', REPO_ID, 'main'], env(cache));
    assert.ok(py.files['model.safetensors']);
    const hubOut = join(tmp.dir, 'out-hub');
    const localOut = join(tmp.dir, 'out-local');
    const before = hub.requests.length;
    const a = await swanAsync(['quantize', REPO_ID, '-o', hubOut, '--quiet'], env(cache, { HF_HUB_OFFLINE: '1', HF_ENDPOINT: 'http://127.0.0.1:9' }));
    assert.equal(a.status, 0, a.stderr);
    assert.equal(hub.requests.length, before, 'offline: no request');
    const b = await swanAsync(['quantize', STORIES, '-o', localOut, '--quiet'], {});
    assert.equal(b.status, 0, b.stderr);
    // Python fetched *.json and *.safetensors only (no licenses to copy); the card and the
    // manifest name their source, the output marker its input path.
    const same = (f: string) => WANTED(f) && f !== 'swan-manifest.json';
    assert.deepEqual(hashes(hubOut, same), hashes(localOut, same));
    assert.ok(Object.keys(hashes(hubOut, same)).includes('model.safetensors'));
    const manifestOf = (d: string) => JSON.parse(readFileSync(join(d, 'swan-manifest.json'), 'utf8')) as Record<string, unknown>;
    const [mh, ml] = [manifestOf(hubOut), manifestOf(localOut)];
    assert.equal(mh.model, REPO_ID);
    delete mh.model;
    delete ml.model;
    assert.deepEqual(mh, ml);
    // --hf-path/--mlx-path spell the same run.
    const c = await swanAsync(['quantize', '--hf-path', REPO_ID, '--mlx-path', join(tmp.dir, 'out-convert-spelling'), '--quiet'], env(cache, { HF_HUB_OFFLINE: '1' }));
    assert.equal(c.status, 0, c.stderr);
    assert.deepEqual(hashes(join(tmp.dir, 'out-convert-spelling'), same), hashes(localOut, same));
    // analyze and eval --vs take the Hub id too, offline from the same cache.
    const an = await swanAsync(['analyze', REPO_ID, '-o', join(tmp.dir, 'hub-manifest.json'), '-q'], env(cache, { HF_HUB_OFFLINE: '1' }));
    assert.equal(an.status, 0, an.stderr);
    const text = join(FIXTURES, 'text', 'tinystories-valid.txt');
    const ev = await swanAsync(['eval', hubOut, '--vs', REPO_ID, '--text', text, '--samples', '2', '--seq-len', '64', '--json'], env(cache, { HF_HUB_OFFLINE: '1' }));
    assert.equal(ev.status, 0, ev.stderr);
    const kl = JSON.parse(ev.stdout).kl as number;
    assert.ok(kl > 0 && kl < 1, `KL ${kl}`);
    // The card names the Hub source.
    assert.match(readFileSync(join(hubOut, 'README.md'), 'utf8'), /\nbase_model: swan-test\/stories260K\nbase_model_relation: quantized\n/);
  });

  test('HF_HUB_OFFLINE=1 with an empty cache: one line, nothing fetched', async () => {
    const before = hub.requests.length;
    const r = await swanAsync(['inspect', REPO_ID], env(join(tmp.dir, 'cache-empty'), { HF_HUB_OFFLINE: '1' }));
    assert.equal(r.status, 1);
    oneErrorLine(r.stderr, /swan-test\/stories260K: not in the Hugging Face cache .* HF_HUB_OFFLINE=1/);
    assert.equal(hub.requests.length, before);
  });

  test('an interrupted download is resumed from the .incomplete file with a Range request', async () => {
    const cache = join(tmp.dir, 'cache-resume');
    const weights = readFileSync(join(STORIES, 'model.safetensors'));
    const cut = 300_000;
    hub.cutAfter.set('model.safetensors', cut);
    const first = await swanAsync(['inspect', REPO_ID], env(cache));
    assert.equal(first.status, 1);
    oneErrorLine(first.stderr, /model\.safetensors: download interrupted after 300000 of \d+ bytes .* run the command again to resume/);
    const blob = join(cache, 'models--swan-test--stories260K', 'blobs', sha256(weights));
    assert.equal(statSync(`${blob}.incomplete`).size, cut);
    assert.ok(!existsSync(blob));
    const mark = hub.requests.length;
    const second = await swanAsync(['inspect', REPO_ID], env(cache));
    assert.equal(second.status, 0, second.stderr);
    const ranges = hub.requests.slice(mark).filter((q) => q.url.endsWith('/model.safetensors') && q.method === 'GET').map((q) => q.range);
    assert.ok(ranges.includes(`bytes=${cut}-${weights.length - 1}`), `resume asks for the rest only: ${JSON.stringify(ranges)}`);
    assert.ok(readFileSync(blob).equals(weights));
    assert.ok(!existsSync(`${blob}.incomplete`));
  });

  test('a blob whose sha256 does not match the Hub is refused and removed', async () => {
    const cache = join(tmp.dir, 'cache-corrupt');
    hub.corrupt.add('model.safetensors');
    try {
      const r = await swanAsync(['inspect', REPO_ID], env(cache));
      assert.equal(r.status, 1);
      oneErrorLine(r.stderr, /model\.safetensors: download refused: sha256 [0-9a-f]{64} does not match the Hub's [0-9a-f]{64}/);
      const blobs = join(cache, 'models--swan-test--stories260K', 'blobs');
      const weightsSha = sha256(readFileSync(join(STORIES, 'model.safetensors')));
      assert.ok(!existsSync(join(blobs, weightsSha)) && !existsSync(join(blobs, `${weightsSha}.incomplete`)));
      assert.ok(!existsSync(join(cache, 'models--swan-test--stories260K', 'refs', 'main')), 'no ref to an incomplete snapshot');
    } finally {
      hub.corrupt.clear();
    }
  });

  test('disk space is checked before the weights are fetched', async () => {
    const cache = join(tmp.dir, 'cache-full');
    hub.advertisedSize.set('model.safetensors', 2 ** 50);
    try {
      const mark = hub.requests.length;
      const r = await swanAsync(['inspect', REPO_ID], env(cache));
      assert.equal(r.status, 1);
      oneErrorLine(r.stderr, /swan-test\/stories260K: needs 1125899\.\d+ GB more in .* but only [\d.]+ GB is free; free space or set HF_HUB_CACHE to a larger disk/);
      assert.ok(!hub.requests.slice(mark).some((q) => q.url.endsWith('/model.safetensors') && q.method === 'GET'), 'no weight was requested');
    } finally {
      hub.advertisedSize.clear();
    }
  });

  test('401, 403 and 404 give one line each, naming the repo and what to do', async () => {
    const cache = join(tmp.dir, 'cache-denied');
    const noToken = await swanAsync(['inspect', 'swan-test/private'], env(cache));
    assert.equal(noToken.status, 1);
    oneErrorLine(noToken.stderr, /^swan: error: swan-test\/private: needs a token \(401\).*set HF_TOKEN/);
    const badToken = await swanAsync(['inspect', 'swan-test/private'], env(cache, { HF_TOKEN: 'hf_not_a_valid_token' }));
    oneErrorLine(badToken.stderr, /swan-test\/private: the Hub refused the token \(401\)/);
    const gated = await swanAsync(['inspect', 'swan-test/gated'], env(cache, { HF_TOKEN: UNGRANTED_TOKEN }));
    oneErrorLine(gated.stderr, /swan-test\/gated: is gated \(403\): accept its conditions at http:\/\/127\.0\.0\.1:\d+\/swan-test\/gated/);
    const missing = await swanAsync(['inspect', 'swan-test/no-such-model'], env(cache, { HF_TOKEN: GOOD_TOKEN }));
    oneErrorLine(missing.stderr, /swan-test\/no-such-model: not found on the Hub \(404\) at revision main/);
    for (const r of [noToken, badToken, gated, missing]) assert.ok(!r.stderr.includes(GOOD_TOKEN) && !r.stderr.includes('hf_not_a_valid_token'), 'never print a token');
    // The token file huggingface_hub writes is read too.
    const home = join(tmp.dir, 'hf-home');
    spawnSync('mkdir', ['-p', home]);
    writeFileSync(join(home, 'token'), `${GOOD_TOKEN}\n`);
    const viaFile = await swanAsync(['inspect', 'swan-test/private'], { HF_ENDPOINT: url, HF_HOME: home, HF_HUB_CACHE: '' });
    assert.equal(viaFile.status, 0, viaFile.stderr);
    assert.ok(existsSync(join(home, 'hub', 'models--swan-test--private', 'refs', 'main')), 'HF_HOME/hub is the cache');
  });

  test('--revision picks the snapshot of that branch', async () => {
    const cache = join(tmp.dir, 'cache-rev');
    const r = await swanAsync(['inspect', REPO_ID, '--revision', 'v1', '--json'], env(cache));
    assert.equal(r.status, 0, r.stderr);
    assert.ok(JSON.parse(r.stdout).tensors.every((t: { dtype: string }) => t.dtype === 'F16'));
    const repo = join(cache, 'models--swan-test--stories260K');
    assert.equal(readFileSync(join(repo, 'refs', 'v1'), 'utf8'), v1Sha);
    const m = await swanAsync(['inspect', REPO_ID, '--json'], env(cache));
    assert.ok(JSON.parse(m.stdout).tensors.every((t: { dtype: string }) => t.dtype === 'BF16'));
    // By sha, offline, from the cache.
    const bySha = await swanAsync(['inspect', REPO_ID, '--revision', v1Sha, '--json'], env(cache, { HF_HUB_OFFLINE: '1' }));
    assert.equal(bySha.status, 0, bySha.stderr);
    assert.ok(JSON.parse(bySha.stdout).tensors.every((t: { dtype: string }) => t.dtype === 'F16'));
    const local = await swanAsync(['inspect', STORIES, '--revision', 'v1'], {});
    oneErrorLine(local.stderr, /--revision applies to a Hub id/);
  });

  test('--upload-repo creates the repo and commits every output file; the card front matter is valid YAML', { skip: SKIP_PY ? 'SWAN_SKIP_PYTHON=1' : false }, async () => {
    const cache = join(tmp.dir, 'cache-up');
    const out = join(tmp.dir, 'out-upload');
    const target = 'me/stories260K-swan-4bit';
    const r = await swanAsync(['quantize', REPO_ID, '-o', out, '-q', '--q-bits', '4', '--upload-repo', target, '--private'], env(cache, { HF_TOKEN: GOOD_TOKEN }));
    assert.equal(r.status, 0, r.stderr);
    assert.ok(hub.repos.get(target)?.private, 'created private');
    const got = hub.received.get(target)!;
    const files = readdirSync(out).sort();
    assert.deepEqual([...got.keys()].sort(), files);
    for (const f of files) assert.ok(got.get(f)!.equals(readFileSync(join(out, f))), `${f}: same bytes`);
    const card = got.get('README.md')!.toString('utf8');
    const yaml = spawnSync(venvPython(), ['-c', 'import sys, json, yaml; t = sys.stdin.read(); print(json.dumps(yaml.safe_load(t.split("---")[1])))'], { input: card, encoding: 'utf8' });
    assert.equal(yaml.status, 0, yaml.stderr);
    const meta = JSON.parse(yaml.stdout) as Record<string, unknown>;
    assert.equal(meta.library_name, 'mlx');
    assert.equal(meta.base_model, REPO_ID);
    assert.equal(meta.base_model_relation, 'quantized');
    assert.equal(meta.pipeline_tag, 'text-generation');
    assert.equal(meta.license, 'mit', 'copied from the source card');
    for (const t of ['mlx', 'swan', 'uniform']) assert.ok((meta.tags as string[]).includes(t), `tag ${t}`);
    assert.match(card, new RegExp(`mlx_lm\\.generate --model ${target} `));
    assert.match(card, new RegExp(`load\\("${target}"\\)`));
  });

  test('a failed upload keeps the complete local output and says how to retry', async () => {
    const out = join(tmp.dir, 'out-upload-fail');
    const r = await swanAsync(['quantize', STORIES, '-o', out, '-q', '--quiet', '--upload-repo', 'me/denied'], env(join(tmp.dir, 'cache-x'), { HF_TOKEN: UNGRANTED_TOKEN }));
    assert.equal(r.status, 1);
    oneErrorLine(r.stderr, /is written and complete, but the upload failed: .*the local output is kept; retry with `hf upload me\/denied /);
    assert.ok(existsSync(join(out, 'model.safetensors')) && existsSync(join(out, 'config.json')) && existsSync(join(out, 'README.md')));
  });
});
