import type { Manifest, ManifestFormat, ManifestTensor } from '../manifest/schema.js';

/**
 * `swan report`: a manifest as one self-contained HTML page (inline CSS, SVG and one small script
 * that sorts and filters the tensor table; no external assets): header, sizes and the per-format
 * table, two layer × module heat-maps (written or planned format with its group size, SWAN
 * composite score) and the per-tensor table. A pure function of the manifest; every string that
 * comes from it is escaped.
 */

export interface ReportOptions {
  /** Shown in the footer (e.g. the manifest's file name); never needed. */
  source?: string;
}

/** Marks a page as swan's report, so that `swan report -o` may replace it and nothing else. */
export const REPORT_GENERATOR = '<meta name="generator" content="swan report">';

/** Escape text for HTML element content and quoted attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}
const e = escapeHtml;

// ---------------------------------------------------------------------------------------------
// Formatting

const int = (x: number | null | undefined): string => (typeof x === 'number' && Number.isFinite(x) ? x.toLocaleString('en-US') : '—');

/** `x` with about four significant digits, never in exponent notation. */
function sig(x: number, digits = 4): string {
  if (!Number.isFinite(x)) return '—';
  if (x === 0) return '0';
  const d = Math.max(0, digits - 1 - Math.floor(Math.log10(Math.abs(x))));
  return x.toFixed(Math.min(d, 12));
}

function fixed(x: unknown, d: number): string {
  return typeof x === 'number' && Number.isFinite(x) ? x.toFixed(d) : '—';
}

function small(x: unknown): string {
  if (typeof x !== 'number' || !Number.isFinite(x)) return '—';
  if (x === 0) return '0';
  return Math.abs(x) >= 1e-3 && Math.abs(x) < 1e4 ? sig(x, 4) : x.toExponential(3);
}

/** The manifest's spelling of a format, as in summary.format_distribution. */
export function formatLabel(f: ManifestFormat | undefined): string {
  if (!f) return '—';
  if ('bits' in f) return `${f.bits}-bit g${f.group_size}${f.mode && f.mode !== 'affine' ? ` ${f.mode}` : ''}`;
  if ('float' in f) return f.float;
  if ('dropped' in f) return 'dropped';
  return '—';
}

/** Bits per weight of a written format for the colour scale (float: its width; dropped: null). */
function formatBits(f: ManifestFormat | undefined): number | null {
  if (!f) return null;
  if ('bits' in f) return f.bits;
  if ('float' in f) return /32/.test(f.float) ? 32 : 16;
  return null;
}

// ---------------------------------------------------------------------------------------------
// Colours

/** Written format → colour: red (fewest bits) through yellow to green (8-bit), blue for float. */
const BITS_COLOURS: Record<number, string> = {
  1: '#a50026',
  2: '#b2182b',
  3: '#f46d43',
  4: '#fdae61',
  5: '#fee08b',
  6: '#d9ef8b',
  7: '#a6d96a',
  8: '#1a9850',
  16: '#4575b4',
  32: '#313695',
};
const NA_FILL = '#e5e7eb';

function bitsColour(bits: number | null): string {
  if (bits === null) return NA_FILL;
  return BITS_COLOURS[bits] ?? '#999999';
}

function bitsName(bits: number): string {
  return bits >= 16 ? `float (${bits}-bit)` : `${bits}-bit`;
}

/** Composite score in [0, 1] → colour (near white = robust, dark purple = sensitive; ColorBrewer Purples, unlike the format map's hues). */
const SCORE_STOPS: [number, [number, number, number]][] = [
  [0, [252, 251, 253]],
  [0.25, [218, 218, 235]],
  [0.5, [158, 154, 200]],
  [0.75, [106, 81, 163]],
  [1, [63, 0, 125]],
];

function scoreColour(s: number): string {
  const x = Math.min(1, Math.max(0, s));
  for (let i = 1; i < SCORE_STOPS.length; i++) {
    const [x1, c1] = SCORE_STOPS[i]!;
    const [x0, c0] = SCORE_STOPS[i - 1]!;
    if (x <= x1) {
      const t = (x - x0) / (x1 - x0);
      const c = c0.map((v, k) => Math.round(v + t * (c1[k]! - v)));
      return `#${c.map((v) => v.toString(16).padStart(2, '0')).join('')}`;
    }
  }
  return '#3f007d';
}

/** Black or white text, whichever reads on `hex`. */
function inkOn(hex: string): string {
  const n = parseInt(hex.slice(1), 16);
  const [r, g, b] = [(n >> 16) & 255, (n >> 8) & 255, n & 255];
  return 0.299 * r + 0.587 * g + 0.114 * b > 140 ? '#111827' : '#ffffff';
}

/** A `swan analyze` manifest: its formats are a plan, nothing was written with them. */
function planOnly(m: Manifest): boolean {
  return m.plan?.written === false;
}

/** "written" or "planned", as the manifest warrants. */
function writtenWord(m: Manifest): string {
  return planOnly(m) ? 'planned' : 'written';
}

// ---------------------------------------------------------------------------------------------
// Tensors

interface Row {
  name: string;
  t: ManifestTensor;
  layer: number | null;
}

function allTensors(m: Manifest): Row[] {
  const rows: Row[] = [];
  for (const shard of Object.values(m.shards ?? {})) {
    for (const [name, t] of Object.entries(shard?.tensors ?? {})) {
      if (!t || typeof t !== 'object') continue;
      const fromName = /(?:^|\.)layers\.(\d+)\./.exec(name);
      const layer = typeof t.layer === 'number' ? t.layer : fromName ? Number(fromName[1]) : null;
      rows.push({ name, t, layer });
    }
  }
  const group = (r: Row) => (r.layer !== null ? 1 : r.t.role === 'embedding' || /embed/.test(r.name) ? 0 : 2);
  return rows.sort((a, b) => group(a) - group(b) || (a.layer ?? 0) - (b.layer ?? 0) || a.name.localeCompare(b.name, 'en', { numeric: true }));
}

/** The composite score, or null where it was not computed (null in the manifest, or the tensor was not scored). */
function compositeOf(t: ManifestTensor): number | null {
  const c = t.composite_score as number | null | undefined;
  if (typeof c !== 'number' || !Number.isFinite(c)) return null;
  if (t.raw_metrics === null) return null;
  return c;
}

const MODULE_ORDER = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

interface Grid {
  layers: number[];
  modules: { key: string; label: string }[];
  cells: Map<string, Row>;
  /** 2-D weights outside the layers (embedding, head). */
  outside: Row[];
}

function isMatrixWeight(r: Row): boolean {
  const shape = Array.isArray(r.t.shape) ? r.t.shape : [];
  return r.name.endsWith('.weight') && shape.length >= 2 && r.t.role !== 'norm' && !/norm\.weight$/.test(r.name);
}

/** Rows = layers, columns = the modules of a layer (q, k, v, o, gate, up, down, then any others). */
export function layerModuleGrid(m: Manifest): Grid {
  const cells = new Map<string, Row>();
  const keys = new Set<string>();
  const layers = new Set<number>();
  const outside: Row[] = [];
  for (const r of allTensors(m)) {
    if (!isMatrixWeight(r)) continue;
    if (r.layer === null) {
      outside.push(r);
      continue;
    }
    const after = r.name.split(new RegExp(`(?:^|\\.)layers\\.${r.layer}\\.`))[1] ?? r.name;
    const key = after.replace(/\.weight$/, '');
    keys.add(key);
    layers.add(r.layer);
    cells.set(`${r.layer}|${key}`, r);
  }
  const leaf = (k: string) => k.split('.').pop()!;
  const rank = (k: string) => {
    const i = MODULE_ORDER.indexOf(leaf(k));
    return i < 0 ? MODULE_ORDER.length : i;
  };
  const sorted = [...keys].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b, 'en', { numeric: true }));
  const short = (k: string) => leaf(k).replace(/_proj$/, '');
  const counts = new Map<string, number>();
  for (const k of sorted) counts.set(short(k), (counts.get(short(k)) ?? 0) + 1);
  const modules = sorted.map((key) => ({ key, label: counts.get(short(key))! > 1 ? key : short(key) }));
  return { layers: [...layers].sort((a, b) => a - b), modules, cells, outside };
}

// ---------------------------------------------------------------------------------------------
// SVG heat-maps

interface CellPaint {
  fill: string;
  text: string;
  title: string;
  /** One phrase for the list of tensors outside the layers. */
  short: string;
  /** Group size of an affine format: marked in the cell corner when it is not 64 (GROUP_MARKS). */
  group?: number;
}

/** Corner marks that tell group sizes apart where the cell is too small for its "4g32" label. */
const GROUP_MARKS: Record<number, string> = { 32: '◤ group 32', 128: '◢ group 128' };

function heatmap(grid: Grid, id: string, label: string, paint: (r: Row) => CellPaint): string {
  const nL = grid.layers.length;
  const nM = grid.modules.length;
  if (!nL || !nM) return '<p class="note">No layer weights in this manifest.</p>';
  const colW = Math.max(44, Math.min(64, grid.modules.reduce((w, m) => Math.max(w, m.label.length), 0) * 7 + 12));
  const cellH = nL <= 16 ? 24 : Math.max(7, Math.min(24, Math.floor(600 / nL)));
  const left = 48;
  const top = 26;
  const width = left + nM * colW + 2;
  const height = top + nL * cellH + 2;
  const labelEvery = cellH >= 12 ? 1 : Math.ceil(12 / cellH);
  const out: string[] = [];
  out.push(
    `<svg class="heatmap" id="${e(id)}" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${e(label)}">`,
    `<defs><pattern id="${e(id)}-hatch" patternUnits="userSpaceOnUse" width="6" height="6" patternTransform="rotate(45)"><rect width="6" height="6" fill="${NA_FILL}"/><line x1="0" y1="0" x2="0" y2="6" stroke="#9ca3af" stroke-width="2"/></pattern></defs>`,
  );
  grid.modules.forEach((m, j) => {
    out.push(`<text class="col" x="${left + j * colW + colW / 2}" y="${top - 8}" text-anchor="middle">${e(m.label)}</text>`);
  });
  grid.layers.forEach((layer, i) => {
    const y = top + i * cellH;
    if (i % labelEvery === 0) {
      out.push(`<text class="row" x="${left - 6}" y="${y + cellH / 2}" text-anchor="end" dominant-baseline="central">${e(layer)}</text>`);
    }
    grid.modules.forEach((m, j) => {
      const r = grid.cells.get(`${layer}|${m.key}`);
      if (!r) return;
      const p = paint(r);
      const fill = p.fill === 'hatch' ? `url(#${e(id)}-hatch)` : p.fill;
      const x = left + j * colW;
      out.push(
        `<rect class="hm-cell" data-layer="${e(layer)}" data-module="${e(m.key)}" x="${x + 1}" y="${y + 1}" width="${colW - 2}" height="${cellH - 2}" rx="2" fill="${e(fill)}"><title>${e(p.title)}</title></rect>`,
      );
      if (p.group === 32) out.push(`<path class="g32" d="M${x + 1} ${y + 1}h7l-7 7z" fill="#111827"/>`);
      if (p.group === 128) out.push(`<path class="g128" d="M${x + colW - 1} ${y + cellH - 1}h-7l7 -7z" fill="#111827"/>`);
      if (p.text && cellH >= 16) {
        const ink = p.fill === 'hatch' ? '#4b5563' : inkOn(p.fill);
        out.push(`<text class="cell" x="${x + colW / 2}" y="${y + cellH / 2}" text-anchor="middle" dominant-baseline="central" fill="${ink}">${e(p.text)}</text>`);
      }
    });
  });
  out.push(`<text class="axis" x="4" y="${top - 8}">layer</text>`);
  out.push('</svg>');
  return out.join('\n');
}

function swatch(fill: string, hatched = false): string {
  return `<span class="swatch${hatched ? ' hatched' : ''}" style="background:${e(fill)}"></span>`;
}

/** Bits of a heat-map cell: the written format, or the decision where the manifest has no formats (reference tool). */
function cellBits(t: ManifestTensor): number | null {
  if (t.format) return formatBits(t.format);
  const b = t.decision?.bits;
  return typeof b === 'number' ? b : null;
}

function formatPaint(r: Row): CellPaint {
  const f = r.t.format;
  const bits = cellBits(r.t);
  const label = f ? formatLabel(f) : bits === null ? '—' : `${bits}-bit (decision; no written format in the manifest)`;
  const group = f && 'bits' in f ? f.group_size : undefined;
  const text = bits === null ? '×' : bits >= 16 ? 'fp' : group ? `${bits}g${group}` : String(bits);
  return {
    fill: bits === null ? 'hatch' : bitsColour(bits),
    text,
    group,
    short: `${label}${f && 'dropped' in f ? ` (${f.dropped})` : ''}`,
    title: `${r.name}\n${label}${f && 'dropped' in f ? ` (${f.dropped})` : ''}${f ? `, ${int(r.t.bytes)} bytes` : ''}\ndecision: ${r.t.decision?.bits ?? '?'}-bit (${r.t.decision?.reason ?? ''})`,
  };
}

function scorePaint(r: Row): CellPaint {
  const c = compositeOf(r.t);
  if (c === null) {
    return { fill: 'hatch', text: '', short: 'not scored', title: `${r.name}\ncomposite not computed\n${r.t.decision?.reason ?? ''}` };
  }
  return { fill: scoreColour(c), text: c.toFixed(2), short: `composite ${c.toFixed(3)}`, title: `${r.name}\ncomposite ${c.toFixed(4)}\ndecision: ${r.t.decision?.bits ?? '?'}-bit (${r.t.decision?.reason ?? ''})` };
}

function formatLegend(rows: Row[]): string {
  const bits = new Set<number>();
  let dropped = false;
  for (const r of rows) {
    const b = cellBits(r.t);
    if (b === null) dropped = true;
    else bits.add(b);
  }
  const items = [...bits].sort((a, b) => a - b).map((b) => `<li>${swatch(bitsColour(b))}${e(bitsName(b))}</li>`);
  if (dropped) items.push(`<li>${swatch(NA_FILL, true)}dropped (not written)</li>`);
  const groups = new Set(rows.map((r) => (r.t.format && 'bits' in r.t.format ? r.t.format.group_size : undefined)));
  for (const g of [32, 128]) if (groups.has(g)) items.push(`<li>${e(GROUP_MARKS[g]!)}</li>`);
  items.push('<li>cell text: bits, g = group size (4g64 = 4-bit, group 64); fp = float</li>');
  return `<ul class="legend">${items.join('')}</ul>`;
}

function scoreLegend(m: Manifest, grid: Grid): string {
  const c = m.config ?? ({} as Partial<Manifest['config']>);
  const w = 300;
  const x0 = 14;
  const th: [unknown, string, boolean][] = [
    [c.sensitivity_threshold_2bit, '2-bit ≤', true],
    [c.sensitivity_threshold_8bit, '8-bit ≥', false],
    [c.sensitivity_threshold_16bit, '16-bit ≥', true],
  ];
  const stops = SCORE_STOPS.map(([x]) => `<stop offset="${x}" stop-color="${scoreColour(x)}"/>`).join('');
  const parts = [
    `<svg class="scale" xmlns="http://www.w3.org/2000/svg" width="${w + 2 * x0}" height="50" viewBox="0 0 ${w + 2 * x0} 50" role="img" aria-label="composite score colour scale">`,
    `<defs><linearGradient id="score-grad" x1="0" x2="1" y1="0" y2="0">${stops}</linearGradient></defs>`,
    `<rect x="${x0}" y="16" width="${w}" height="14" fill="url(#score-grad)" stroke="#9ca3af" stroke-width="0.5"/>`,
    `<text x="${x0 - 4}" y="23" text-anchor="end" dominant-baseline="central">0</text>`,
    `<text x="${x0 + w + 4}" y="23" dominant-baseline="central">1</text>`,
  ];
  for (const [x, t, above] of th) {
    if (typeof x !== 'number' || !Number.isFinite(x)) continue;
    const px = x0 + Math.min(1, Math.max(0, x)) * w;
    const anchor = px < x0 + 30 ? 'start' : px > x0 + w - 30 ? 'end' : 'middle';
    parts.push(`<line x1="${px}" x2="${px}" y1="${above ? 12 : 16}" y2="${above ? 30 : 34}" stroke="#111827" stroke-width="1.2"/>`);
    parts.push(`<text x="${px}" y="${above ? 9 : 44}" text-anchor="${anchor}" class="tick">${e(`${t} ${x}`)}</text>`);
  }
  parts.push('</svg>');
  const cells = [...grid.cells.values()];
  const nullComposite = cells.filter((r) => typeof r.t.composite_score !== 'number').length;
  const unscored = cells.filter((r) => typeof r.t.composite_score === 'number' && compositeOf(r.t) === null).length;
  const notes: string[] = [];
  if (nullComposite) notes.push(`${swatch(NA_FILL, true)}skipped (not needed for this decision): kurtosis and the error proxy fix the bits whatever the other two scores are (${nullComposite} cell${nullComposite === 1 ? '' : 's'}; \`--all-metrics\` computes them)`);
  if (unscored) notes.push(`${swatch(NA_FILL, true)}not scored (protected or too small; the decision's reason says which; ${unscored} cell${unscored === 1 ? '' : 's'})`);
  notes.push('Hover a cell for the tensor, its score and decision.');
  return `<div class="legend-row">${parts.join('')}${notes.map((n) => `<p class="note">${n}</p>`).join('')}</div>`;
}

function outsideStrip(grid: Grid, paint: (r: Row) => CellPaint): string {
  if (!grid.outside.length) return '';
  const items = grid.outside.map((r) => {
    const p = paint(r);
    return `<li title="${e(p.title)}">${swatch(p.fill === 'hatch' ? NA_FILL : p.fill, p.fill === 'hatch')}<code>${e(r.name)}</code> ${e(p.short)}</li>`;
  });
  return `<div class="outside"><span class="muted">outside the layers:</span><ul class="legend">${items.join('')}</ul></div>`;
}

// ---------------------------------------------------------------------------------------------
// Sections

function header(m: Manifest, rows: Row[]): string {
  const plan = m.plan;
  const facts: [string, string][] = [
    ['model', e(m.model ?? '—')],
    ['model_type', e(m.model_type ?? '—')],
    ['dtype', e(m.dtype ?? '—')],
    ['strategy', plan ? e(plan.strategy) : '<span class="muted">not recorded</span>'],
    ['rounding', plan ? e(plan.rounding) : '<span class="muted">not recorded</span>'],
    ['seed', e(m.seed ?? '—')],
    ['swan version', e(m.swan_version ?? '—')],
    ['4-bit tier group size', e(m.q_group_size ?? '—')],
    ['layers / tensors', `${e(m.total_layers ?? '—')} / ${e(m.total_tensors ?? rows.length)}`],
  ];
  if (m.measurement) facts.push(['candidates measured', e(`${m.measurement.dtype}, ${m.measurement.mlx_rules} rules${m.measurement.rounding_search ? ', with search' : ''}`)]);
  return [
    `<header><h1>swan report <span class="model">${e(m.model ?? '')}</span></h1>`,
    `<dl class="facts">${facts.map(([k, v]) => `<div><dt>${e(k)}</dt><dd>${v}</dd></div>`).join('')}</dl></header>`,
  ].join('\n');
}

function sizeSection(m: Manifest): string {
  const s = m.summary ?? ({} as Partial<Manifest['summary']>);
  const bytes = s.output_bytes;
  const cards: [string, string, string?][] = [];
  if (typeof bytes === 'number') {
    cards.push([planOnly(m) ? 'planned bytes' : 'output bytes', `${sig(bytes / 1e9)} GB`, `${sig(bytes / 2 ** 30)} GiB · ${int(bytes)} bytes of tensors`]);
  } else if (typeof s.estimated_size_gb === 'number') {
    cards.push(['estimated size', `${sig(s.estimated_size_gb)} GB`, 'from the decisions (no written sizes in this manifest)']);
  }
  if (typeof s.true_bpw === 'number') cards.push(['true bits per weight', fixed(s.true_bpw, 3), 'scales and biases counted, as mlx-lm reports']);
  const nominal = s.nominal_average_bits ?? s.average_bits;
  if (typeof nominal === 'number') cards.push(['nominal average bits', fixed(nominal, 3), s.nominal_average_bits === undefined ? 'of the decisions' : `of the ${writtenWord(m)} formats`]);
  const params = s.output_params ?? s.total_params;
  cards.push(['parameters', int(params), s.output_params !== undefined && s.total_params !== s.output_params ? `${int(s.total_params)} in the checkpoint` : '']);
  const plan = m.plan;
  if (plan && typeof plan.target_bytes === 'number') {
    const pct = typeof bytes === 'number' ? ` · plan = ${((100 * bytes) / plan.target_bytes).toFixed(3)}% of it` : '';
    cards.push(['budget target', `${int(plan.target_bytes)} B`, `${sig(plan.target_bytes / 1e9)} GB${pct}`]);
  }
  if (plan && typeof plan.expected_damage === 'number') {
    const ref = plan.reference;
    cards.push(
      ref && ref.expected_damage > 0
        ? ['expected damage', `${(plan.expected_damage / ref.expected_damage).toFixed(2)}×`, `that of uniform ${ref.format} (mlx_lm.convert -q, ${int(ref.bytes)} B) under the same model`]
        : ['expected damage', small(plan.expected_damage), 'Σ rel. error × importance (ranks plans of one model)'],
    );
  }
  if (plan?.target_from === 'thresholds') cards.push(['size chosen', 'SWAN\'s', 'the bytes --strategy thresholds would write (default)']);

  const out = [
    '<section id="size"><h2>Size</h2>',
    `<div class="cards">${cards.map(([k, v, sub]) => `<div class="card"><div class="k">${e(k)}</div><div class="v">${e(v)}</div>${sub ? `<div class="sub">${e(sub)}</div>` : ''}</div>`).join('')}</div>`,
  ];
  const fd = s.format_distribution;
  if (fd && typeof fd === 'object' && Object.keys(fd).length) {
    const entries = Object.entries(fd).sort((a, b) => b[1].params - a[1].params);
    const totalParams = entries.reduce((a, [, r]) => a + r.params, 0);
    const totalTensors = entries.reduce((a, [, r]) => a + r.tensors, 0);
    const totalBytes = entries.reduce((a, [, r]) => a + r.bytes, 0);
    const colourOf = (label: string) => {
      const b = /^(\d+)-bit/.exec(label);
      return b ? bitsColour(Number(b[1])) : /32/.test(label) ? bitsColour(32) : bitsColour(16);
    };
    // A stacked bar of the parameter shares.
    let x = 0;
    const W = 600;
    const segs = entries.map(([label, r]) => {
      const w = totalParams ? (W * r.params) / totalParams : 0;
      const seg = `<rect x="${x}" y="0" width="${w}" height="18" fill="${colourOf(label)}"><title>${e(`${label}: ${((100 * r.params) / totalParams).toFixed(2)}% of parameters`)}</title></rect>`;
      x += w;
      return seg;
    });
    out.push(`<svg class="sharebar" xmlns="http://www.w3.org/2000/svg" width="${W}" height="18" viewBox="0 0 ${W} 18" role="img" aria-label="share of parameters per format">${segs.join('')}</svg>`);
    out.push(
      '<table class="formats"><thead><tr><th>format</th><th class="num">tensors</th><th class="num">parameters</th><th class="num">share of params</th><th class="num">bytes</th><th class="num">share of bytes</th></tr></thead><tbody>',
    );
    for (const [label, r] of entries) {
      out.push(
        `<tr data-format="${e(label)}"><td>${swatch(colourOf(label))}${e(label)}</td><td class="num">${int(r.tensors)}</td><td class="num">${int(r.params)}</td><td class="num">${totalParams ? ((100 * r.params) / totalParams).toFixed(2) : '0.00'}%</td><td class="num">${int(r.bytes)}</td><td class="num">${totalBytes ? ((100 * r.bytes) / totalBytes).toFixed(2) : '0.00'}%</td></tr>`,
      );
    }
    out.push(
      `</tbody><tfoot><tr><th>total</th><td class="num">${int(totalTensors)}</td><td class="num">${int(totalParams)}</td><td class="num">100%</td><td class="num">${int(totalBytes)}</td><td class="num">100%</td></tr></tfoot></table>`,
    );
  } else if (s.bits_distribution && typeof s.bits_distribution === 'object') {
    out.push('<p class="note">This manifest records no formats (the reference SWAN tool writes none); the decisions\' bits:</p>');
    out.push('<table class="formats"><thead><tr><th>decision</th><th class="num">parameters</th><th class="num">share</th></tr></thead><tbody>');
    for (const [b, r] of Object.entries(s.bits_distribution)) {
      out.push(`<tr><td>${swatch(bitsColour(Number(b)))}${e(b)}-bit</td><td class="num">${int(r.params)}</td><td class="num">${fixed(r.percentage, 2)}%</td></tr>`);
    }
    out.push('</tbody></table>');
  }
  out.push('</section>');
  return out.join('\n');
}

function mapsSection(m: Manifest, grid: Grid): string {
  const cells = [...grid.cells.values()];
  return [
    '<section id="maps"><h2>Layers × modules</h2>',
    `<p class="muted">${grid.layers.length} layers × ${grid.modules.length} modules; one cell per weight matrix. Hover a cell for details.</p>`,
    '<div class="maps">',
    `<figure><figcaption>${[...cells, ...grid.outside].some((r) => r.t.format) ? (planOnly(m) ? 'Planned format (bits, group; swan analyze wrote no model)' : 'Written format (bits, group)') : 'SWAN decision (bits; the manifest has no formats)'}</figcaption>`,
    heatmap(grid, 'map-format', `${writtenWord(m)} format per layer and module`, formatPaint),
    formatLegend([...cells, ...grid.outside]),
    outsideStrip(grid, formatPaint),
    '</figure>',
    '<figure><figcaption>SWAN composite score</figcaption>',
    heatmap(grid, 'map-score', 'SWAN composite score per layer and module', scorePaint),
    scoreLegend(m, grid),
    outsideStrip(grid, scorePaint),
    '</figure>',
    '</div></section>',
  ].join('\n');
}

/** Why a score cell is empty: skipped because the bits were already decided, or the tensor was not scored at all. */
function emptyScore(t: ManifestTensor, scored: boolean): string {
  return scored
    ? '<td class="num na" data-v="" title="skipped (not needed for this decision): kurtosis and the error proxy already fix the bits">skipped</td>'
    : `<td class="num na" data-v="" title="${e(`not scored: ${t.decision?.reason ?? 'protected or too small'}`)}">not scored</td>`;
}

function scoreCell(t: ManifestTensor, v: unknown, raw: unknown, scored: boolean): string {
  if (!scored || typeof v !== 'number' || !Number.isFinite(v)) return emptyScore(t, scored);
  const title = typeof raw === 'number' && Number.isFinite(raw) ? ` title="raw ${e(small(raw))}"` : '';
  return `<td class="num" data-v="${v}"${title}>${v.toFixed(3)}</td>`;
}

/** The legend under the tensor table: what each score is, and which ones saturate or were skipped on this model. */
function metricLegend(rows: Row[], m: Manifest): string {
  const scored = rows.filter((r) => r.t.raw_metrics !== null && typeof r.t.scores?.error_proxy === 'number');
  const saturated = scored.filter((r) => r.t.scores.error_proxy >= 0.9995).length;
  const skipped = rows.filter((r) => r.t.raw_metrics !== null && compositeOf(r.t) === null).length;
  const items = [
    '<b>svd</b>: share of the spectrum in the top singular values (SWAN\'s SVD concentration), normalised to [0, 1]',
    '<b>kurtosis</b>: excess kurtosis of the weights (outliers), normalised',
    '<b>output</b>: output-noise amplification of a random input, normalised',
    `<b>error proxy</b>: relative RMS error of 4-bit group-128 round-to-nearest, mapped 0.5% → 0 … 5% → 1 (SWAN's scale)${
      saturated ? `; <b>saturated</b> on ${saturated} of ${scored.length} scored tensors here (their error is above 5%, so the score is 1.000 and does not tell them apart; hover for the raw error)` : ''
    }`,
    '<b>composite</b>: SWAN\'s weighted sum of the four; its thresholds give the <b>SWAN decision</b>',
    skipped ? `<b>skipped</b>: not needed for this decision (${skipped} tensor${skipped === 1 ? '' : 's'}: kurtosis and the error proxy alone fix the bits); <b>not scored</b>: protected or too small` : '<b>not scored</b>: protected or too small',
    `<b>${writtenWord(m)} format</b>: what ${planOnly(m) ? 'the plan would store' : 'was stored'} (it differs from the decision under a budget, or where a group size does not divide the row)`,
  ];
  if (rows.some((r) => typeof r.t.damage === 'number')) items.push('<b>expected damage</b>: relative error × importance, the budget\'s data-free damage model (ranks formats within one model)');
  return `<ul class="metric-legend">${items.map((i) => `<li>${i}</li>`).join('')}</ul>`;
}

/** In-page sorting (click or Enter on a header) and filtering of the tensor table; no external assets. */
const TABLE_SCRIPT = `(() => {
  const table = document.getElementById('tensor-table');
  const filter = document.getElementById('tensor-filter');
  const count = document.getElementById('tensor-count');
  if (!table || !filter || !count) return;
  const body = table.tBodies[0];
  const heads = Array.from(table.tHead.rows[0].cells);
  const key = (td, num) => {
    const v = td.dataset.v;
    if (num) return v === undefined || v === '' ? null : Number(v);
    return v !== undefined ? v : td.textContent;
  };
  const sortBy = (i) => {
    const th = heads[i];
    const dir = th.getAttribute('aria-sort') === 'ascending' ? -1 : 1;
    heads.forEach((h) => h.removeAttribute('aria-sort'));
    th.setAttribute('aria-sort', dir > 0 ? 'ascending' : 'descending');
    const num = th.classList.contains('num');
    const rows = Array.from(body.rows);
    rows.sort((a, b) => {
      const x = key(a.cells[i], num), y = key(b.cells[i], num);
      if (x === null || y === null) return x === y ? 0 : x === null ? 1 : -1;
      return (num ? x - y : String(x).localeCompare(String(y), 'en', { numeric: true })) * dir;
    });
    for (const r of rows) body.appendChild(r);
  };
  heads.forEach((th, i) => {
    th.tabIndex = 0;
    th.addEventListener('click', () => sortBy(i));
    th.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') sortBy(i); });
  });
  filter.addEventListener('input', () => {
    const terms = filter.value.toLowerCase().split(/\\s+/).filter(Boolean);
    let shown = 0;
    for (const r of Array.from(body.rows)) {
      const text = r.textContent.toLowerCase();
      r.hidden = !terms.every((w) => text.includes(w));
      if (!r.hidden) shown++;
    }
    count.textContent = shown + ' of ' + body.rows.length + ' tensors';
  });
})();`;

function tensorSection(rows: Row[], m: Manifest): string {
  const hasImportance = rows.some((r) => typeof r.t.importance === 'number');
  const hasDamage = rows.some((r) => typeof r.t.damage === 'number');
  const head = ['tensor', 'shape', 'role', 'class', 'svd', 'kurtosis', 'output', 'error proxy', 'composite', 'SWAN decision', `${writtenWord(m)} format`, 'bytes'];
  if (hasImportance) head.push('importance');
  if (hasDamage) head.push('expected damage');
  const numeric = new Set(['svd', 'kurtosis', 'output', 'error proxy', 'composite', 'SWAN decision', 'bytes', 'importance', 'expected damage']);
  const out = [
    '<section id="tensors"><h2>Tensors</h2>',
    `<p class="muted">Click a column header to sort (again to reverse); type to filter (every word must appear in the row). <label>Filter <input id="tensor-filter" type="search" placeholder="e.g. layers.3 mlp 4-bit" size="28"></label> <span id="tensor-count">${rows.length} of ${rows.length} tensors</span></p>`,
    '<div class="scroll"><table class="tensors" id="tensor-table"><thead><tr>',
    head.map((h) => `<th${numeric.has(h) ? ' class="num"' : ''} title="sort by ${e(h)}">${e(h)}</th>`).join(''),
    '</tr></thead><tbody>',
  ];
  rows.forEach((r, index) => {
    const t = r.t;
    const scored = t.raw_metrics !== null;
    const s = (t.scores ?? {}) as unknown as Partial<Record<string, unknown>>;
    const raw = (t.raw_metrics ?? {}) as unknown as Partial<Record<string, unknown>>;
    const comp = compositeOf(t);
    const fmt = formatLabel(t.format);
    const bits = formatBits(t.format);
    const decisionBits = t.decision?.bits;
    const differs = t.format && 'bits' in t.format ? t.format.bits !== decisionBits : bits !== null && decisionBits !== 16;
    const dropNote = t.format && 'dropped' in t.format ? ` (${t.format.dropped})` : '';
    const num = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? String(x) : '');
    const cells = [
      `<td class="name" data-v="${String(index).padStart(6, '0')}"><code>${e(r.name)}</code></td>`,
      `<td class="shape">${e(Array.isArray(t.shape) ? t.shape.join('×') : '—')}</td>`,
      `<td>${e(t.role ?? '—')}</td>`,
      `<td class="cls-${e(t.classification ?? 'none')}">${e(t.classification ?? '—')}</td>`,
      scoreCell(t, s.svd, raw.svd_concentration, scored),
      scoreCell(t, s.kurtosis, raw.kurtosis, scored),
      scoreCell(t, s.output_sensitivity, raw.output_delta, scored),
      scoreCell(t, s.error_proxy, raw.error_nrmse, scored),
      comp === null ? emptyScore(t, scored) : `<td class="num comp" data-v="${comp}" style="background:${scoreColour(comp)};color:${inkOn(scoreColour(comp))}">${comp.toFixed(3)}</td>`,
      `<td class="decision" data-v="${num(decisionBits)}"><b>${e(decisionBits ?? '?')}-bit</b> <span class="reason">${e(t.decision?.reason ?? '')}</span></td>`,
      `<td class="fmt${differs ? ' differs' : ''}">${swatch(bitsColour(bits), bits === null)}${e(fmt + dropNote)}</td>`,
      `<td class="num" data-v="${num(t.bytes)}">${int(t.bytes)}</td>`,
    ];
    if (hasImportance) cells.push(`<td class="num" data-v="${num(t.importance)}">${small(t.importance)}</td>`);
    if (hasDamage) cells.push(`<td class="num" data-v="${num(t.damage)}">${small(t.damage)}</td>`);
    out.push(`<tr>${cells.join('')}</tr>`);
  });
  out.push('</tbody></table></div>', metricLegend(rows, m), `<script>${TABLE_SCRIPT}</script>`, '</section>');
  return out.join('\n');
}

function configSection(m: Manifest): string {
  const c = m.config;
  if (!c) return '';
  const rows: [string, string][] = [
    ['thresholds', `2-bit ≤ ${c.sensitivity_threshold_2bit}, 8-bit ≥ ${c.sensitivity_threshold_8bit}, 16-bit ≥ ${c.sensitivity_threshold_16bit}; default ${c.default_bits}-bit`],
    ['metric weights', c.metric_weights ? Object.entries(c.metric_weights).map(([k, v]) => `${k} ${v}`).join(', ') : '—'],
    ['svd rank, min tensor params', `${c.svd_rank}, ${c.min_tensor_params}`],
    ['protected patterns', (c.protected_patterns ?? []).join(', ') || '—'],
    ['sensitive patterns', (c.sensitive_patterns ?? []).join(', ') || '—'],
  ];
  if (m.plan?.damage_knobs) rows.push(['damage model', JSON.stringify(m.plan.damage_knobs)]);
  return `<section id="config"><details><summary>SWAN configuration</summary><table class="kv">${rows.map(([k, v]) => `<tr><th>${e(k)}</th><td>${e(v)}</td></tr>`).join('')}</table></details></section>`;
}

const CSS = `
:root{--fg:#111827;--muted:#6b7280;--line:#e5e7eb;--bg:#ffffff;--accent:#1d4ed8}
*{box-sizing:border-box}
body{margin:0;padding:20px 24px 40px;font:14px/1.45 -apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);background:var(--bg);max-width:1800px}
h1{font-size:22px;margin:0 0 12px}h1 .model{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-weight:600;color:var(--accent)}
h2{font-size:17px;margin:32px 0 10px;padding-bottom:4px;border-bottom:1px solid var(--line)}
code,.shape{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
.muted,.note{color:var(--muted)}.note{font-size:12.5px;margin:6px 0}
dl.facts{display:flex;flex-wrap:wrap;gap:8px 28px;margin:0}dl.facts div{min-width:90px}dt{font-size:11px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}dd{margin:0;font-weight:600}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin-bottom:14px}.card{border:1px solid var(--line);border-radius:8px;padding:10px 14px;min-width:170px}
.card .k{font-size:11px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}.card .v{font-size:20px;font-weight:650;font-variant-numeric:tabular-nums}.card .sub{font-size:12px;color:var(--muted)}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}th,td{padding:4px 7px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
thead th{font-size:12px;color:var(--muted);font-weight:600;border-bottom:2px solid var(--line);white-space:nowrap;position:sticky;top:0;background:var(--bg)}
.num{text-align:right;white-space:nowrap}tfoot th,tfoot td{font-weight:650;border-top:2px solid var(--line)}
table.formats{margin-top:10px;min-width:560px}.sharebar{display:block;border-radius:4px;max-width:100%}
.swatch{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:6px;vertical-align:-1px;border:1px solid rgba(0,0,0,.15)}
.swatch.hatched{background-image:repeating-linear-gradient(45deg,#9ca3af 0 2px,transparent 2px 5px)!important}
.maps{display:flex;flex-wrap:wrap;gap:40px;align-items:flex-start}figure{margin:0}figcaption{font-weight:650;margin-bottom:6px}
svg.heatmap{display:block;font:11px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}svg.heatmap text.col,svg.heatmap text.row{fill:#374151}svg.heatmap text.cell{font-size:10px}svg.heatmap text.axis{fill:var(--muted)}
svg.scale{display:block;font:10px -apple-system,"Segoe UI",Roboto,Arial,sans-serif}svg.scale text{fill:#374151}
.legend-row{max-width:420px}ul.legend{list-style:none;padding:0;margin:8px 0;display:flex;flex-wrap:wrap;gap:4px 14px;font-size:12.5px}
.outside{font-size:12.5px;max-width:440px}.outside ul.legend{flex-direction:column;margin-top:2px}
.scroll{overflow:auto;max-height:80vh;border:1px solid var(--line);border-radius:6px}table.tensors{font-size:12px;width:100%}table.tensors td.name{white-space:nowrap}table.tensors thead th{cursor:pointer;z-index:1;box-shadow:0 1px 0 var(--line)}table.tensors th[aria-sort=ascending]::after{content:' ▲'}table.tensors th[aria-sort=descending]::after{content:' ▼'}
ul.metric-legend{font-size:12.5px;color:#374151;margin:10px 0;padding-left:18px;max-width:1100px}#tensor-filter{font:inherit;padding:2px 6px}
table.tensors .reason{color:var(--muted);font-size:11.5px}table.tensors td.decision{min-width:140px;max-width:260px}
td.na{color:#9ca3af}td.fmt{white-space:nowrap}td.fmt.differs{font-weight:650}td.comp{font-weight:600}
td.cls-protected{color:#4575b4}td.cls-sensitive{color:#b45309}
tbody tr:hover td{background-color:#f9fafb}
details summary{cursor:pointer;font-weight:650;margin-top:28px}table.kv th{font-size:12px;color:var(--muted);white-space:nowrap}table.kv td{font-size:12.5px;word-break:break-word}
footer{margin-top:32px;color:var(--muted);font-size:12px}
@media print{body{padding:0}thead th{position:static}}
`;

/** The report: one self-contained HTML document. */
export function renderReport(m: Manifest, opts: ReportOptions = {}): string {
  const rows = allTensors(m);
  const grid = layerModuleGrid(m);
  return [
    '<!DOCTYPE html>',
    `<html lang="en"><head><meta charset="utf-8">${REPORT_GENERATOR}`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${e(`swan report — ${m.model ?? 'model'}`)}</title>`,
    `<style>${CSS}</style>`,
    '</head><body>',
    header(m, rows),
    sizeSection(m),
    mapsSection(m, grid),
    tensorSection(rows, m),
    configSection(m),
    `<footer>Written by <code>swan report</code>${opts.source ? ` from <code>${e(opts.source)}</code>` : ''} (manifest of swan ${e(m.swan_version ?? '?')}). Self-contained: no external assets.</footer>`,
    '</body></html>',
    '',
  ].join('\n');
}
