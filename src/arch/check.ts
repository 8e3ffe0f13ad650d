/**
 * The checkpoint against config.json, before any analysis: the config values the architecture
 * reads have the right type and range, every parameter of the model mlx-lm builds from them is
 * present with its shape, and no tensor is there that mlx-lm's strict load would reject (the ones
 * its sanitize drops are dropped, with a warning). mlx-lm is the judge of what loads.
 */
import { SwanError } from '../errors.js';
import type { HfModelDir } from '../io/hf-model.js';
import { parsePyJson, type PyObject } from '../io/pyjson.js';
import type { TensorInfo } from '../io/safetensors.js';
import { ConfigError } from './config.js';
import { configTypeProblem } from './config-types.js';
import type { Architecture, ExpectedTensor, TensorRecord } from './types.js';

const shape = (s: number[]) => `[${s.join(', ')}]`;
const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** Throws a one-line SwanError for the first problem class found; returns warnings for dropped tensors. */
export function checkCheckpoint(
  hf: HfModelDir,
  arch: Architecture,
  tied: boolean,
  entries: { info: TensorInfo; record: TensorRecord }[],
): string[] {
  let expected: Map<string, ExpectedTensor>;
  // Parsed again from the text so that `64.0` is seen as the float Python reads.
  const config = parsePyJson(hf.configText) as PyObject;
  try {
    expected = arch.expectedTensors(config, tied);
  } catch (e) {
    if (e instanceof ConfigError) throw new SwanError(hf.configPath, e.message);
    throw e;
  }
  // Then the fields only transformers reads (mlx_lm.load's tokenizer goes through its config class).
  const typeProblem = configTypeProblem(config, String(hf.config.model_type));
  if (typeProblem) throw new SwanError(hf.configPath, typeProblem);
  const modelType = String(hf.config.model_type);
  const present = new Set<string>();
  const unknown: TensorInfo[] = [];
  const reshaped: { info: TensorInfo; want: ExpectedTensor }[] = [];
  const warnings: string[] = [];
  for (const { info, record } of entries) {
    present.add(info.name);
    const want = expected.get(info.name);
    if (want) {
      if (want.shape.length !== info.shape.length || want.shape.some((n, i) => n !== info.shape[i])) reshaped.push({ info, want });
    } else if (record.mlxName === null) {
      const why =
        record.role === 'head'
          ? 'tie_word_embeddings is true, so mlx-lm uses model.embed_tokens as the head'
          : "mlx-lm's sanitize drops it (a precomputed buffer)";
      warnings.push(`${info.name}: not written: ${why}`);
    } else {
      unknown.push(info);
    }
  }
  const missing = [...expected.keys()].filter((n) => !present.has(n));

  const classes: string[] = [];
  if (missing.length) classes.push(plural(missing.length, 'missing tensor'));
  if (unknown.length) classes.push(plural(unknown.length, 'unknown tensor'));
  if (reshaped.length) classes.push(plural(reshaped.length, 'tensor', 'tensors') + ' of the wrong shape');
  const total = missing.length + unknown.length + reshaped.length;
  const also = () => (total > 1 ? `; in all: ${classes.join(', ')}` : '');
  const model = `the ${modelType} model config.json describes`;
  if (missing.length) {
    const first = missing[0]!;
    const why = first === 'lm_head.weight' ? ' (tie_word_embeddings is false)' : '';
    const hint = unknown.length ? `; the checkpoint has ${unknown[0]!.name}, which the model does not` : '';
    throw new SwanError(hf.dir, `tensor ${first} is missing: ${model} has it${why}${hint}${also()}`);
  }
  if (unknown.length) {
    const first = unknown[0]!;
    throw new SwanError(first.file, `tensor ${first.name} is not a parameter of ${model} (mlx-lm would refuse to load it)${also()}`);
  }
  if (reshaped.length) {
    const { info, want } = reshaped[0]!;
    throw new SwanError(info.file, `tensor ${info.name} has shape ${shape(info.shape)}, but config.json gives ${shape(want.shape)} = ${want.from}${also()}`);
  }
  return warnings;
}
