import { describeNonFinite, DTYPE_NAMES, type NonFiniteCounts } from '../io/float.js';
import type { Manifest } from '../manifest/schema.js';
import type { Rounding } from '../options.js';
import { planTotals, writtenEntries, type Plan } from '../plan/plan.js';

export interface CardInput {
  plan: Plan;
  /** How the quantized layers were rounded when written. */
  rounding: Rounding;
  manifest?: Manifest;
  modelType: string;
  /** HF repo id of the source when known (config `_name_or_path` that looks like org/name). */
  baseModel?: string;
  outputName: string;
  /** The Hub repo the model is uploaded to (`--upload-repo`): the usage snippet loads it. */
  repoId?: string;
  /** The source card's `license` (front matter), copied into this card's. */
  license?: string;
  seed?: number;
  results?: CardResult[];
  /** How the results were measured (windows, seed, dtype, versions). */
  resultsProtocol?: string;
  /** Written tensors holding NaN/±Inf or values beyond the dtype's range (`--allow-nonfinite`), by HF name. */
  nonfinite?: ReadonlyMap<string, NonFiniteCounts>;
  /** Where quality may fall off (src/plan/fragile.ts), one line each. */
  warnings?: string[];
}

/** Rows of the non-finite table before it says "and N more". */
const NONFINITE_ROWS = 50;

/** The `## Non-finite weights` section, or '' when every written value is finite. */
export function nonFiniteSection(counts: ReadonlyMap<string, NonFiniteCounts> | undefined, plan: Plan, hasManifest: boolean): string {
  if (!counts || counts.size === 0) return '';
  const dtype = DTYPE_NAMES[plan.dtype];
  const lines = [
    '## Non-finite weights',
    '',
    `Written with \`--allow-nonfinite\`: ${counts.size > 1 ? `${counts.size} tensors of the source hold` : '1 tensor of the source holds'} values that are not finite in ${dtype}, and the model may produce NaN or infinite logits.` +
      ' A quantized group holding one has a non-finite scale or bias, so the whole group is lost.',
    '',
    '| tensor | values |',
    '|---|---|',
  ];
  const rows = [...counts];
  for (const [name, c] of rows.slice(0, NONFINITE_ROWS)) lines.push(`| \`${name}\` | ${describeNonFinite(c, plan.dtype)} |`);
  if (rows.length > NONFINITE_ROWS) lines.push(`| … and ${rows.length - NONFINITE_ROWS} more${hasManifest ? ' (`swan-manifest.json` lists every one)' : ''} | |`);
  lines.push('');
  return lines.join('\n');
}

/** One row of the model card's results table (`swan quantize --eval`). */
export interface CardResult {
  label: string;
  text: string;
  ppl: number;
  kl?: number;
  /** The 16-bit source's perplexity on the same windows. */
  sourcePpl?: number;
  top1Agree?: number;
}

/** Decimal and binary units side by side (GB vs GiB is a common source of confusion); MB below 1 GB. */
function gb(bytes: number): string {
  if (bytes < 1e9) return `${(bytes / 1e6).toFixed(3)} MB (${(bytes / 2 ** 20).toFixed(3)} MiB)`;
  return `${(bytes / 1e9).toFixed(3)} GB (${(bytes / 2 ** 30).toFixed(3)} GiB)`;
}

/** Allocation table: tensors and parameters per format, with bytes. */
export function allocationTable(plan: Plan): string {
  const t = planTotals(plan);
  const rows = [...t.byFormat.entries()].sort((a, b) => b[1].params - a[1].params);
  const lines = ['| format | tensors | parameters | share of params | bytes |', '|---|---:|---:|---:|---:|'];
  for (const [label, r] of rows) {
    lines.push(`| ${label} | ${r.tensors} | ${r.params.toLocaleString('en-US')} | ${((100 * r.params) / t.params).toFixed(2)}% | ${r.bytes.toLocaleString('en-US')} |`);
  }
  lines.push(`| **total** | ${rows.reduce((s, [, r]) => s + r.tensors, 0)} | ${t.params.toLocaleString('en-US')} | 100% | ${t.bytes.toLocaleString('en-US')} |`);
  return lines.join('\n');
}

/** The `## Results` section: perplexity through mlx-lm, ΔPPL and KL against the source. */
export function resultsSection(results: CardResult[], protocol?: string): string {
  const num = (x: number | undefined, d: number, signed = false) => (x === undefined ? '—' : `${signed && x >= 0 ? '+' : ''}${x.toFixed(d)}`);
  const lines = ['## Results', '', '| text | source PPL | PPL | ΔPPL | KL vs source (nats/token) | top-1 agreement |', '|---|---:|---:|---:|---:|---:|'];
  for (const r of results) {
    const d = r.sourcePpl === undefined ? undefined : r.ppl - r.sourcePpl;
    lines.push(`| ${r.text} | ${num(r.sourcePpl, 4)} | ${num(r.ppl, 4)} | ${num(d, 4, true)} | ${num(r.kl, 5)} | ${r.top1Agree === undefined ? '—' : (100 * r.top1Agree).toFixed(2) + '%'} |`);
  }
  lines.push('');
  if (protocol) lines.push(`Measured with \`swan eval\` (real mlx-lm): ${protocol}.`, '');
  return lines.join('\n');
}

/** A YAML scalar the Hub's metadata accepts unquoted (ids, licenses, tags), else undefined. */
function plainScalar(s: string | undefined): string | undefined {
  return s !== undefined && /^[A-Za-z0-9][A-Za-z0-9_.\/-]*$/.test(s) ? s : undefined;
}

/**
 * The Hub's YAML front matter (what the Hub indexes: library, base model and its relation, task,
 * tags, license), one `key: value` or list item per line.
 */
export function cardFrontMatter(c: Pick<CardInput, 'plan' | 'baseModel' | 'license'>): string[] {
  const front = ['---', 'library_name: mlx'];
  const license = plainScalar(c.license);
  if (license) front.push(`license: ${license}`);
  const base = plainScalar(c.baseModel);
  if (base) front.push(`base_model: ${base}`, 'base_model_relation: quantized');
  front.push('pipeline_tag: text-generation', 'tags:', '- mlx', '- swan', `- ${c.plan.strategy}`, '- quantized');
  if (c.plan.strategy !== 'uniform') front.push('- mixed-precision');
  front.push('---', '');
  return front;
}

/** The `license:` of a model card's front matter (a README.md's text), if any. */
export function cardLicense(readme: string): string | undefined {
  const m = /^---\r?\n([\s\S]*?)\r?\n---/.exec(readme);
  const line = m?.[1]!.split(/\r?\n/).find((l) => /^license:/.test(l));
  return plainScalar(line?.slice('license:'.length).trim().replace(/^["']|["']$/g, ''));
}

/** The model card README.md: front matter mlx-lm/HF understand, the allocation, sizes, method and usage. */
export function modelCard(c: CardInput): string {
  const t = planTotals(c.plan);
  const front = cardFrontMatter(c);
  const budget = c.plan.budget;
  const rounding =
    c.rounding === 'search'
      ? ' Each group\'s scale was searched to lower its squared error (bias kept at the group\'s largest-magnitude weight; never worse than round-to-nearest on any group); the format is plain MLX affine.'
      : c.rounding === 'gptq'
        ? " Codes were chosen by GPTQ under each layer's input covariance measured with `swan imatrix --covariance` (each group's scale searched as it is reached; per tensor the plain scale search's result where GPTQ's output error was not lower); the format is plain MLX affine."
        : '';
  const method = budget
    ? [
        `Mixed precision chosen by swan's **budget** strategy for a target of ${budget.targetBytes.toLocaleString('en-US')} bytes of tensors`,
        '(weights, scales, biases and float tensors, the index\'s `total_size`; the tokenizer, config and safetensors headers are not counted)',
        budget.targetFrom === 'thresholds'
          ? "— swan's default size: the bytes SWAN's published thresholds (`--strategy thresholds`) would write for this model, spent where the damage model expects the least loss (`--target-bpw` / `--target-size` choose another size):"
          : '(the size asked for):',
        'for every tensor and every MLX affine format (2–8 bits × group 32/64/128) and float, the relative reconstruction error of the real MLX quantizer on the weights was measured;',
        "the expected damage (that error × a data-free importance: role, depth, size and the tensor's **SWAN** sensitivity score) was minimised under the byte budget (a multiple-choice knapsack).",
        budget.reference && budget.reference.damage > 0
          ? `The expected damage of this plan is ${(budget.damage / budget.reference.damage).toFixed(2)}× that of uniform ${budget.reference.label} (what \`mlx_lm.convert -q\` writes, ${budget.reference.bytes.toLocaleString('en-US')} bytes) under the same model: a ranking of plans of this model, not a perplexity.`
          : '',
        'No calibration data was used.',
        c.seed !== undefined ? `Random draws are seeded (seed ${c.seed}): the same input gives the same bytes.` : '',
      ].join(' ')
    : c.plan.strategy === 'uniform'
      ? `Uniform affine quantization of every Linear and Embedding layer at ${c.plan.defaultBits} bits, group size ${c.plan.defaultGroupSize} (the same choices as \`mlx_lm.convert -q --q-bits ${c.plan.defaultBits} --q-group-size ${c.plan.defaultGroupSize}\`). Layers whose input dimension the group size does not divide stay in ${DTYPE_NAMES[c.plan.dtype]}.`
      : [
          'Mixed precision chosen per tensor by **SWAN** (data-free sensitivity analysis; Black Sheep AI Research, 2026) as implemented by swan:',
          'each weight tensor is scored by SVD spectral concentration, excess kurtosis, output-noise amplification and a 4-bit reconstruction-error proxy;',
          `the composite score picks 16-bit (≥ ${c.manifest?.config.sensitivity_threshold_16bit ?? 0.9}), 8-bit g64 (≥ ${c.manifest?.config.sensitivity_threshold_8bit ?? 0.65}), 2-bit g32 (≤ ${c.manifest?.config.sensitivity_threshold_2bit ?? 0.1}) or the default 4-bit g${c.plan.defaultGroupSize}.`,
          'Embeddings, the output head, norms and 1-D tensors are protected (kept in the model dtype). No calibration data was used.',
          c.seed !== undefined ? `Random draws are seeded (seed ${c.seed}): the same input gives the same bytes.` : '',
        ].join(' ');
  const lines = [
    ...front,
    `# ${c.outputName}`,
    '',
    `This model was quantized for [MLX](https://github.com/ml-explore/mlx) with swan from a ${c.modelType} checkpoint${c.baseModel ? ` ([${c.baseModel}](https://huggingface.co/${c.baseModel}))` : ''}.`,
    '',
    '## Size',
    '',
    `- parameters: ${t.params.toLocaleString('en-US')}`,
    `- bytes on disk (weights, scales, biases): ${t.bytes.toLocaleString('en-US')} = ${gb(t.bytes)}`,
    `- nominal average bits: ${t.nominalBits.toFixed(3)}`,
    `- true bits per weight (scales and biases counted, as mlx-lm reports): ${t.trueBpw.toFixed(3)}`,
    `- dtype of float tensors, scales and biases: ${DTYPE_NAMES[c.plan.dtype]}`,
    '',
    ...(c.nonfinite?.size ? [nonFiniteSection(c.nonfinite, c.plan, c.manifest !== undefined)] : []),
    ...(c.warnings?.length ? ['## Warnings', '', ...c.warnings.map((w) => `- ${w}`), ''] : []),
    '## Allocation',
    '',
    allocationTable(c.plan),
    '',
    '## Method',
    '',
    method + rounding,
    '',
  ];
  if (c.results && c.results.length) lines.push(resultsSection(c.results, c.resultsProtocol));
  lines.push(
    '## Use with mlx-lm',
    '',
    '```bash',
    'pip install mlx-lm',
    `mlx_lm.generate --model ${c.repoId ?? c.outputName} --prompt "Once upon a time"`,
    '```',
    '',
    '```python',
    'from mlx_lm import load, generate',
    '',
    `model, tokenizer = load("${c.repoId ?? c.outputName}")`,
    'print(generate(model, tokenizer, prompt="Once upon a time", max_tokens=100))',
    '```',
    '',
  );
  if (c.plan.strategy !== 'uniform') {
    const per = writtenEntries(c.plan);
    const quantized = per.filter((e) => e.format.kind === 'affine').length;
    lines.push(`The per-tensor scores and decisions are in \`swan-manifest.json\` (${per.length} tensors, ${quantized} quantized).`, '');
  }
  return lines.join('\n');
}

