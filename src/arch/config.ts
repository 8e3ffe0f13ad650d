/**
 * The config.json values an architecture reads, checked for type and range before anything is
 * derived from them. mlx-lm reads them as Python values (`64.0` is a float, `true` an int) and
 * builds one module per layer, so a wrong type or an absurd size fails there late, or crashes.
 * Values come from parsePyJson (src/io/pyjson.ts), which keeps Python's float lexemes as PyFloat.
 */
import { PyFloat } from '../io/pyjson.js';

/**
 * Upper bounds of config sizes (docs/reliability.md): far above every released model, low enough
 * that a typo cannot make swan or mlx-lm derive 10^9 layers or a vocabulary of 2^40 rows.
 */
export const CONFIG_LIMITS = Object.freeze({
  /** num_hidden_layers: released dense models have at most ~130. */
  layers: 1000,
  /** hidden_size, intermediate_size, head_dim: the largest released are ~53K (an intermediate). */
  width: 2 ** 20,
  /** num_attention_heads, num_key_value_heads: the largest released have 128. */
  heads: 2 ** 14,
  /** vocab_size: the largest released are ~256K. */
  vocab: 2 ** 24,
  /** num_experts, num_local_experts, num_experts_per_tok: the largest released have 512 experts. */
  experts: 2 ** 14,
});

/** A config value of the wrong type or range; the message starts with the key. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** The value as config.json spells it (floats keep their Python form). */
function show(v: unknown): string {
  if (v instanceof PyFloat) return Number.isInteger(v.value) ? `${v.value}.0` : String(v.value);
  if (typeof v === 'bigint') return v.toString();
  return JSON.stringify(v) ?? String(v);
}

const absent = (v: unknown): boolean => v === undefined || v === null;

/** Typed reads of a config object; every failure is a ConfigError naming the key. */
export class ConfigReader {
  constructor(
    readonly config: Record<string, unknown>,
    /** The model_type, for messages about what mlx-lm requires. */
    readonly modelType: string,
  ) {}

  has(key: string): boolean {
    return !absent(this.config[key]);
  }

  /** A positive integer at most `max`; `fallback` when absent or null (undefined: the key is required). */
  posInt(key: string, max: number, fallback?: number): number {
    const v = this.config[key];
    if (absent(v)) {
      if (fallback === undefined) throw new ConfigError(`${key} is missing; mlx-lm's ${this.modelType} model requires it`);
      return fallback;
    }
    if (v instanceof PyFloat) {
      const why = Number.isInteger(v.value) ? 'written as a float, which mlx-lm cannot use as a size' : 'not an integer';
      throw new ConfigError(`${key} is ${show(v)}: ${why}`);
    }
    if (typeof v === 'bigint') throw new ConfigError(`${key} is ${show(v)}: above swan's limit of ${max.toLocaleString('en-US')}`);
    if (typeof v !== 'number') throw new ConfigError(`${key} is ${show(v)}: not an integer`);
    if (!Number.isInteger(v)) throw new ConfigError(`${key} is ${show(v)}: not an integer`);
    if (v < 1) throw new ConfigError(`${key} is ${show(v)}: must be a positive integer`);
    if (v > max) throw new ConfigError(`${key} is ${show(v)}: above swan's limit of ${max.toLocaleString('en-US')}`);
    return v;
  }

  /** A finite number above zero (float or int); `fallback` when absent or null (undefined: required). */
  posNumber(key: string, fallback?: number): number {
    const v = this.config[key];
    if (absent(v)) {
      if (fallback === undefined) throw new ConfigError(`${key} is missing; mlx-lm's ${this.modelType} model requires it`);
      return fallback;
    }
    const x = v instanceof PyFloat ? v.value : v;
    if (typeof x !== 'number' || !Number.isFinite(x) || x <= 0) throw new ConfigError(`${key} is ${show(v)}: must be a finite number above 0`);
    return x;
  }

  /** true or false; `fallback` when absent or null (mlx-lm reads null as False in these flags). */
  bool(key: string, fallback: boolean): boolean {
    const v = this.config[key];
    if (absent(v)) return fallback;
    if (typeof v !== 'boolean') throw new ConfigError(`${key} is ${show(v)}: must be true or false`);
    return v;
  }
}
