/** `swan report`: a manifest (or a swan MLX directory) as one self-contained, escaped HTML page. */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { manifestTensors, type Manifest } from '../src/manifest/schema.js';
import { escapeHtml, renderReport } from '../src/report/html.js';
import { swan } from './helpers/cli.js';
import { STORIES, tempDir } from './helpers/paths.js';

const tmp = tempDir('swan-report-');
after(() => tmp.cleanup());

const int = (x: number) => x.toLocaleString('en-US');

/** The (layer, module) pairs of a manifest's layer weight matrices. */
function expectedCells(m: Manifest): Set<string> {
  const out = new Set<string>();
  for (const [name, t] of manifestTensors(m)) {
    const hit = /^(?:.*\.)?layers\.(\d+)\.(.+)\.weight$/.exec(name);
    if (!hit || t.shape.length !== 2 || t.role === 'norm') continue;
    out.add(`${Number(hit[1])}|${hit[2]}`);
  }
  return out;
}

/** The cells of one heat-map SVG: `layer|module` of every `hm-cell` rect. */
function svgCells(html: string, id: string): string[] {
  const start = html.indexOf(`<svg class="heatmap" id="${id}"`);
  assert.ok(start >= 0, `heat-map ${id} present`);
  const svg = html.slice(start, html.indexOf('</svg>', start));
  return [...svg.matchAll(/<rect class="hm-cell" data-layer="(\d+)" data-module="([^"]+)"/g)].map((x) => `${x[1]}|${x[2]}`);
}

function oneLineError(r: { status: number | null; stderr: string }, what: RegExp): void {
  assert.notEqual(r.status, 0, 'non-zero exit');
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line: ${r.stderr}`);
  assert.match(lines[0]!, /^swan: error: /);
  assert.match(lines[0]!, what);
}

describe('swan report', () => {
  const out = join(tmp.dir, 'stories-mlx');
  const budgetOut = join(tmp.dir, 'stories-budget');
  let manifest: Manifest;

  before(() => {
    let r = swan(['quantize', STORIES, '-o', out, '--quiet', '--strategy', 'thresholds']);
    assert.equal(r.status, 0, r.stderr);
    r = swan(['quantize', STORIES, '-o', budgetOut, '--quiet', '--target-bpw', '6']);
    assert.equal(r.status, 0, r.stderr);
    manifest = JSON.parse(readFileSync(join(out, 'swan-manifest.json'), 'utf8')) as Manifest;
  });

  test('from an MLX directory: header, tensor names, the format table equal to the summary', () => {
    const file = join(tmp.dir, 'r1.html');
    const r = swan(['report', out, '-o', file]);
    assert.equal(r.status, 0, r.stderr);
    const html = readFileSync(file, 'utf8');
    assert.match(html, /^<!DOCTYPE html>/);
    for (const name of manifestTensors(manifest).keys()) assert.ok(html.includes(`<code>${name}</code>`), name);
    for (const v of [manifest.model, manifest.model_type, manifest.dtype, String(manifest.seed), manifest.swan_version, 'thresholds', 'rtn']) {
      assert.ok(html.includes(`<dd>${v}</dd>`), `header has ${v}`);
    }
    const s = manifest.summary;
    assert.ok(html.includes(int(s.output_bytes)) && html.includes(s.true_bpw.toFixed(3)) && html.includes(s.nominal_average_bits.toFixed(3)));
    const entries = Object.entries(s.format_distribution);
    assert.ok(entries.length >= 2);
    const totalParams = entries.reduce((a, [, x]) => a + x.params, 0);
    for (const [label, f] of entries) {
      const row = new RegExp(`<tr data-format="${label}">(.*?)</tr>`).exec(html);
      assert.ok(row, `row of ${label}`);
      const nums = [...row[1]!.matchAll(/<td class="num">([^<]*)<\/td>/g)].map((x) => x[1]);
      assert.deepEqual(nums.slice(0, 3), [int(f.tensors), int(f.params), `${((100 * f.params) / totalParams).toFixed(2)}%`], label);
      assert.equal(nums[3], int(f.bytes), label);
    }
    const foot = /<tfoot>(.*?)<\/tfoot>/.exec(html)![1]!;
    assert.ok(foot.includes(`>${int(s.output_bytes)}<`) && foot.includes(`>${int(s.output_params)}<`) && foot.includes(`>${int(s.tensor_count)}<`), foot);
  });

  test('heat-maps: one cell per (layer, module), hatched null scores with the note', () => {
    const file = join(tmp.dir, 'r2.html');
    assert.equal(swan(['report', join(out, 'swan-manifest.json'), '-o', file]).status, 0);
    const html = readFileSync(file, 'utf8');
    const want = expectedCells(manifest);
    assert.equal(want.size, manifest.total_layers * 7, 'stories260K: 5 layers × q, k, v, o, gate, up, down');
    for (const id of ['map-format', 'map-score']) {
      const cells = svgCells(html, id);
      assert.equal(cells.length, want.size, id);
      assert.deepEqual(new Set(cells), want, id);
    }
    for (const m of ['q', 'k', 'v', 'o', 'gate', 'up', 'down']) assert.ok(html.includes(`text-anchor="middle">${m}</text>`), `column ${m}`);
    // Null composites (decided by kurtosis and the error proxy) are hatched, with the note.
    const nulls = [...manifestTensors(manifest).values()].filter((t) => t.layer !== null && t.composite_score === null && t.shape.length === 2).length;
    assert.ok(nulls > 0);
    const score = html.slice(html.indexOf('id="map-score"'), html.indexOf('</svg>', html.indexOf('id="map-score"')));
    assert.equal(score.match(/fill="url\(#map-score-hatch\)"/g)?.length, nulls);
    assert.ok(html.includes('skipped (not needed for this decision)'));
    // Self-contained: one inline script (the table's sorting and filtering), no external resources.
    assert.equal(html.match(/<script/gi)?.length, 1);
    assert.ok(!/<link|<img|<iframe|\bsrc=|@import/i.test(html));
    assert.ok(!/(href|url\()\s*=?\s*["']?https?:/i.test(html));
    // Thresholds manifests have no importance or damage.
    assert.ok(!html.includes('expected damage</th>'));
  });

  test('budget manifest: importance and expected damage columns', () => {
    const file = join(tmp.dir, 'r3.html');
    assert.equal(swan(['report', budgetOut, '-o', file]).status, 0);
    const html = readFileSync(file, 'utf8');
    const m = JSON.parse(readFileSync(join(budgetOut, 'swan-manifest.json'), 'utf8')) as Manifest;
    assert.equal(m.plan?.strategy, 'budget');
    assert.match(html, /<th class="num"[^>]*>importance<\/th>/);
    assert.match(html, /<th class="num"[^>]*>expected damage<\/th>/);
    assert.ok(html.includes('<dd>budget</dd>') && html.includes(int(m.plan!.target_bytes!)));
    const table = html.slice(html.indexOf('<table class="tensors"'));
    const rows = table.slice(0, table.indexOf('</table>')).split('<tr>').slice(2);
    assert.equal(rows.length, manifestTensors(m).size);
  });

  test('an analyze-only manifest: the report speaks of the plan, not of written formats', () => {
    const file = join(tmp.dir, 'analysis.json');
    assert.equal(swan(['analyze', STORIES, '-o', file, '-q', '--no-search-errors']).status, 0);
    assert.equal(JSON.parse(readFileSync(file, 'utf8')).plan.written, false);
    const html = join(tmp.dir, 'analysis.html');
    assert.equal(swan(['report', file, '-o', html]).status, 0);
    const text = readFileSync(html, 'utf8');
    assert.match(text, /Planned format \(bits, group; swan analyze wrote no model\)/);
    assert.match(text, />planned format<\/th>/);
    assert.match(text, /planned bytes/);
    assert.doesNotMatch(text, /[Ww]ritten format|output bytes/);
    // A quantized output's report keeps "written".
    const written = join(tmp.dir, 'written.html');
    assert.equal(swan(['report', out, '-o', written]).status, 0);
    assert.match(readFileSync(written, 'utf8'), /Written format \(bits, group\)/);
  });

  test('default output is ./swan-report.html, written atomically', () => {
    const cwd = join(tmp.dir, 'cwd');
    mkdirSync(cwd);
    const r = swan(['report', out], { cwd });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(readdirSync(cwd), ['swan-report.html']);
    assert.ok(!readdirSync(out).includes('report.html') && !readdirSync(out).includes('swan-report.html'), 'nothing written into the model directory');
  });

  test('every string from the manifest is escaped', () => {
    const evil = structuredClone(manifest) as Manifest & Record<string, unknown>;
    const shard = Object.values(evil.shards)[0]!;
    const q = shard.tensors['model.layers.0.self_attn.q_proj.weight']!;
    delete shard.tensors['model.layers.0.self_attn.q_proj.weight'];
    const bad = 'model.layers.0.self_attn.<script>alert(1)</script>.weight';
    shard.tensors[bad] = { ...q, role: '<b>role</b>', decision: { bits: 4, reason: 'a & b "quoted" \'single\'' } };
    evil.model = '"><img src=x onerror=alert(2)>';
    evil.dtype = '<style>x</style>';
    evil.summary.format_distribution['<i>fmt</i>'] = { tensors: 1, params: 1, bytes: 1 };
    const file = join(tmp.dir, 'evil.json');
    writeFileSync(file, JSON.stringify(evil));
    const html = join(tmp.dir, 'evil.html');
    assert.equal(swan(['report', file, '-o', html]).status, 0);
    const text = readFileSync(html, 'utf8');
    assert.ok(text.includes('model.layers.0.self_attn.&lt;script&gt;alert(1)&lt;/script&gt;.weight'));
    assert.equal(text.match(/<script/g)?.length, 1, "only the report's own script element");
    assert.ok(!text.includes('<script>alert') && !text.includes('<img') && !text.includes('<b>role') && !text.includes('<i>fmt'));
    assert.equal(text.match(/<style>/g)?.length, 1, 'only the report\'s own style element');
    assert.ok(text.includes('a &amp; b &quot;quoted&quot; &#39;single&#39;'));
    assert.ok(text.includes('&quot;&gt;&lt;img src=x onerror=alert(2)&gt;'));
    // The pure function and the escaper agree.
    assert.equal(escapeHtml('<a href="x">&\'</a>'), '&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;');
    assert.equal(renderReport(evil), text.replace(/ from <code>[^<]*<\/code>/, ''));
  });

  test('a missing or invalid manifest: one-line error, non-zero exit, nothing written', () => {
    const html = join(tmp.dir, 'never.html');
    const notJson = join(tmp.dir, 'bad.json');
    writeFileSync(notJson, '{"shards": ');
    oneLineError(swan(['report', notJson, '-o', html]), /bad\.json: not a valid manifest/);
    const noShards = join(tmp.dir, 'noshards.json');
    writeFileSync(noShards, '{"model": "x"}');
    oneLineError(swan(['report', noShards, '-o', html]), /noshards\.json: not a valid manifest: \$ has no "shards"/);
    const arr = join(tmp.dir, 'array.json');
    writeFileSync(arr, '[1, 2]');
    oneLineError(swan(['report', arr, '-o', html]), /array\.json: not a valid manifest: \$ must be object/);
    oneLineError(swan(['report', join(tmp.dir, 'missing.json'), '-o', html]), /missing\.json: no such file or directory/);
    oneLineError(swan(['report', STORIES, '-o', html]), /has no swan-manifest\.json/);
    oneLineError(swan(['report', out, '-o', join(tmp.dir, 'no-such-dir', 'r.html')]), /does not exist/);
    assert.ok(!existsSync(html));
    assert.ok(!readdirSync(tmp.dir).some((f) => f.includes('swan-tmp')), 'no temporary files left');
  });
});
