/**
 * The manifest's JSON Schema and its validator (Ajv). Every field a reader of swan uses is typed
 * and bounded here, so a hostile or corrupt manifest is refused with the file and the JSON path of
 * the first bad value, never read as NaN or a TypeError later. Fields swan does not read are free
 * (the reference tool's manifests carry others).
 */
import { Ajv, type ErrorObject } from 'ajv';
import { AFFINE_BITS, AFFINE_GROUP_SIZES, ALL_QUANT_FORMATS, FP_MODES } from '../format.js';
import { DTYPE_NAMES } from '../io/float.js';
import { INPUT_WEIGHTINGS, QUANT_RULES } from '../options.js';

/** Largest dimension and rank a manifest may state (as the safetensors reader allows). */
const MAX_DIM = 2 ** 40;
const MAX_RANK = 8;
/**
 * A relative squared error ‖W − Q(W)‖²/‖W‖² stays below g/9 per group even for a lone outlier
 * (the outlier is stored exactly; every other weight errs by at most half a step of range/3), so
 * anything near 1,000 is not a measurement.
 */
const MAX_REL_ERROR = 1000;

const num = { type: 'number' };
const nullableNum = { type: ['number', 'null'] };
const count = { type: 'integer', minimum: 0 };
const unit = { type: 'number', minimum: 0, maximum: 1 };
const nullableUnit = { type: ['number', 'null'], minimum: 0, maximum: 1 };
const str = { type: 'string' };
const relError = { type: 'number', minimum: 0, maximum: MAX_REL_ERROR };

const scores = {
  type: 'object',
  properties: { svd: nullableUnit, kurtosis: nullableUnit, output_sensitivity: nullableUnit, error_proxy: nullableUnit },
};

/** Group sizes of every quantized format (affine's and the fp modes'). */
const GROUP_SIZES = [...new Set(ALL_QUANT_FORMATS.map((f) => f.groupSize))].sort((a, b) => a - b);

const candidate = {
  type: 'object',
  required: ['bits', 'group_size', 'rel_error'],
  properties: {
    bits: { enum: [...AFFINE_BITS] },
    group_size: { enum: GROUP_SIZES },
    mode: { enum: ['affine', ...FP_MODES] },
    bytes: count,
    rel_error: relError,
    rel_error_search: relError,
  },
};

const format = {
  type: 'object',
  oneOf: [
    {
      required: ['bits', 'group_size'],
      properties: { bits: { enum: [...AFFINE_BITS] }, group_size: { enum: GROUP_SIZES }, mode: { enum: ['affine', ...FP_MODES] } },
    },
    { required: ['float'], properties: { float: str } },
    { required: ['dropped'], properties: { dropped: str } },
  ],
};

const tensor = {
  type: 'object',
  required: ['shape'],
  properties: {
    shape: { type: 'array', maxItems: MAX_RANK, items: { type: 'integer', minimum: 0, maximum: MAX_DIM } },
    dtype: str,
    num_params: count,
    classification: str,
    scores,
    composite_score: nullableNum,
    decision: { type: 'object', required: ['bits'], properties: { bits: { enum: [2, 4, 8, 16] }, reason: str } },
    raw_metrics: { type: ['object', 'null'], additionalProperties: nullableNum },
    mlx_name: { type: ['string', 'null'] },
    role: str,
    layer: { type: ['integer', 'null'], minimum: 0 },
    format,
    reason: str,
    bytes: count,
    candidates: { type: 'array', maxItems: ALL_QUANT_FORMATS.length, items: candidate },
    importance: { type: 'number', minimum: 0 },
    damage: { type: 'number', minimum: 0 },
    experts: { type: 'array', items: { type: 'object', required: ['name'], properties: { name: str, scores, composite_score: nullableNum } } },
  },
};

/** The schema of a manifest swan reads (its own, or the reference tool's). */
export const MANIFEST_SCHEMA = {
  type: 'object',
  required: ['shards'],
  properties: {
    swan_version: str,
    model: str,
    model_type: str,
    seed: count,
    dtype: str,
    q_group_size: count,
    total_layers: count,
    total_tensors: count,
    measurement: {
      type: 'object',
      required: ['dtype', 'mlx_rules', 'rounding_search'],
      properties: {
        dtype: { enum: Object.values(DTYPE_NAMES) },
        mlx_rules: { enum: [...QUANT_RULES] },
        rounding_search: { type: 'boolean' },
        input_weighting: { enum: [...INPUT_WEIGHTINGS] },
      },
    },
    plan: { type: 'object', properties: { strategy: str, rounding: str, input_weighting: str, target_bytes: count, expected_damage: num } },
    shards: {
      type: 'object',
      additionalProperties: { type: 'object', required: ['tensors'], properties: { file: str, tensors: { type: 'object', additionalProperties: tensor } } },
    },
    summary: { type: 'object', properties: { total_params: count, output_bytes: count, output_params: count, true_bpw: num, nominal_average_bits: num, average_bits: num, estimated_size_gb: num } },
    config: { type: 'object', properties: { sensitivity_threshold_2bit: unit, sensitivity_threshold_8bit: unit, sensitivity_threshold_16bit: unit } },
  },
};

const validate = new Ajv({ allErrors: false, strict: true, allowUnionTypes: true }).compile(MANIFEST_SCHEMA);

/** JSON Pointer (Ajv's instancePath) → `$.shards["a.b"].tensors["x"].candidates[0]`, readable and escaped. */
function jsonPath(pointer: string): string {
  if (!pointer) return '$';
  return (
    '$' +
    pointer
      .slice(1)
      .split('/')
      .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
      .map((p) => (/^\d+$/.test(p) ? `[${p}]` : /^[A-Za-z_][A-Za-z0-9_]*$/.test(p) ? `.${p}` : `[${JSON.stringify(p)}]`))
      .join('')
  );
}

function describe(e: ErrorObject): string {
  const where = jsonPath(e.instancePath);
  if (e.keyword === 'required') return `${where} has no "${String(e.params.missingProperty)}"`;
  if (e.keyword === 'enum') return `${where} must be one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
  if (e.keyword === 'oneOf') return `${where} is not a format ({bits, group_size}, {float} or {dropped})`;
  return `${where} ${e.message ?? 'is invalid'}`;
}

/** Null when `value` is a valid manifest, else the first problem with its JSON path. */
export function manifestProblem(value: unknown): string | null {
  if (validate(value)) return null;
  return describe(validate.errors![0]!);
}
