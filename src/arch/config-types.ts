/**
 * The Python types of the config.json fields that transformers' config classes declare for each
 * supported model_type (LlamaConfig, MistralConfig, Qwen2Config, Qwen3Config). mlx_lm.load builds
 * its tokenizer through transformers, whose strict config dataclasses refuse a field of another
 * type (`initializer_range: false`, `rms_norm_eps: 1`), so swan refuses such a config before
 * writing an output that would not load. test/config-types.test.ts checks the table against the
 * real transformers: every value transformers refuses, swan refuses too.
 */
import { PyFloat, type PyValue } from '../io/pyjson.js';

/** A Python type as transformers annotates it; a field takes any of the listed ones. */
type PyType = 'int' | 'float' | 'bool' | 'str' | 'none' | 'list[int]' | 'list[str]' | 'dict';

const INT: PyType[] = ['int'];
const FLOAT: PyType[] = ['float'];
const BOOL: PyType[] = ['bool'];
const STR: PyType[] = ['str'];
const OPT_INT: PyType[] = ['int', 'none'];
const NUMBER_OR_NONE: PyType[] = ['int', 'float', 'none'];

/** Fields every supported config class declares alike. */
const COMMON: Record<string, PyType[]> = {
  vocab_size: INT,
  hidden_size: INT,
  intermediate_size: INT,
  num_hidden_layers: INT,
  num_attention_heads: INT,
  hidden_act: STR,
  max_position_embeddings: INT,
  initializer_range: FLOAT,
  rms_norm_eps: FLOAT,
  use_cache: BOOL,
  tie_word_embeddings: BOOL,
  pad_token_id: OPT_INT,
  bos_token_id: OPT_INT,
  eos_token_id: ['int', 'list[int]', 'none'],
  rope_parameters: ['dict', 'none'],
  // Declared by the base class but not checked there; transformers and mlx_lm.load fail on other values.
  architectures: ['list[str]', 'none'],
  torch_dtype: ['str', 'none'],
  dtype: ['str', 'none'],
};

const SLIDING: Record<string, PyType[]> = { use_sliding_window: BOOL, sliding_window: OPT_INT, max_window_layers: INT, layer_types: ['list[str]', 'none'] };

const BY_MODEL_TYPE: Record<string, Record<string, PyType[]>> = {
  llama: { ...COMMON, num_key_value_heads: OPT_INT, pretraining_tp: OPT_INT, attention_bias: BOOL, attention_dropout: NUMBER_OR_NONE, mlp_bias: BOOL, head_dim: OPT_INT },
  mistral: { ...COMMON, num_key_value_heads: INT, head_dim: OPT_INT, sliding_window: OPT_INT, attention_dropout: ['int', 'float'] },
  qwen2: { ...COMMON, ...SLIDING, num_key_value_heads: OPT_INT, attention_dropout: ['int', 'float'] },
  qwen3: { ...COMMON, ...SLIDING, num_key_value_heads: OPT_INT, head_dim: INT, attention_bias: BOOL, attention_dropout: ['int', 'float'] },
};

function isInt(v: PyValue): boolean {
  return (typeof v === 'number' && Number.isInteger(v)) || typeof v === 'bigint';
}

function is(v: PyValue, t: PyType): boolean {
  switch (t) {
    case 'int':
      return isInt(v);
    case 'float':
      return v instanceof PyFloat;
    case 'bool':
      return typeof v === 'boolean';
    case 'str':
      return typeof v === 'string';
    case 'none':
      return v === null;
    case 'list[int]':
      return Array.isArray(v) && v.every(isInt);
    case 'list[str]':
      return Array.isArray(v) && v.every((x) => typeof x === 'string');
    case 'dict':
      return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof PyFloat);
  }
}

const PY_NAMES: Record<PyType, string> = { int: 'an integer', float: 'a float (written with a decimal point or exponent)', bool: 'true or false', str: 'a string', none: 'null', 'list[int]': 'a list of integers', 'list[str]': 'a list of strings', dict: 'an object' };

/** Attention layer kinds of the dense models swan supports (transformers allows more, for other models). */
const LAYER_TYPES = ['full_attention', 'sliding_attention'];

function shown(v: PyValue): string {
  const s = JSON.stringify(v, (_k, x: unknown) => (x instanceof PyFloat ? x.value : typeof x === 'bigint' ? Number(x) : x)) ?? String(v);
  return s.length > 60 ? s.slice(0, 57) + '...' : s;
}

/** The first field of `config` whose value transformers' config class for `modelType` refuses, as a message; null when none. */
export function configTypeProblem(config: Record<string, PyValue>, modelType: string): string | null {
  const fields = BY_MODEL_TYPE[modelType];
  if (!fields) return null;
  const needs = `transformers' ${modelType} config (which mlx_lm.load reads) needs`;
  for (const [key, types] of Object.entries(fields)) {
    if (!(key in config)) continue;
    const v = config[key]!;
    if (!types.some((t) => is(v, t))) return `${key} is ${shown(v)}: ${needs} ${types.map((t) => PY_NAMES[t]).join(' or ')}`;
  }
  // The value checks of those classes (interval(), validate_architecture, validate_layer_type in transformers).
  const hidden = config.hidden_size;
  const heads = config.num_attention_heads;
  if (typeof hidden === 'number' && typeof heads === 'number' && heads > 0 && hidden % heads !== 0) {
    return `hidden_size ${hidden} is not a multiple of num_attention_heads ${heads}: ${needs} it to be, even with head_dim given`;
  }
  const range = config.initializer_range;
  if (range instanceof PyFloat && !(range.value >= 0 && range.value <= 1)) return `initializer_range is ${shown(range)}: ${needs} a value in [0, 1]`;
  const layerTypes = config.layer_types;
  if (Array.isArray(layerTypes)) {
    const odd = layerTypes.find((t) => !LAYER_TYPES.includes(t as string));
    if (odd !== undefined) return `layer_types has ${shown(odd)}: ${needs} each entry in ${LAYER_TYPES.join(', ')}`;
    if (layerTypes.length !== config.num_hidden_layers) return `layer_types has ${layerTypes.length} entries: ${needs} one per layer (num_hidden_layers ${shown(config.num_hidden_layers!)})`;
  }
  return null;
}

/** The fields checked for each model_type (for the test against transformers). */
export function typedConfigFields(modelType: string): string[] {
  return Object.keys(BY_MODEL_TYPE[modelType] ?? {});
}
