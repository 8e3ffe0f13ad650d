import { llama } from './llama.js';
import { qwen2 } from './qwen2.js';
import { qwen3 } from './qwen3.js';
import type { Architecture } from './types.js';

export type { Architecture, TensorRecord, TensorRole } from './types.js';

const ARCHITECTURES: Architecture[] = [llama, qwen2, qwen3];

export const SUPPORTED_MODEL_TYPES = ARCHITECTURES.flatMap((a) => a.modelTypes);

/** The architecture for config.model_type, or undefined when swan does not support it. */
export function architectureFor(modelType: unknown): Architecture | undefined {
  return ARCHITECTURES.find((a) => typeof modelType === 'string' && a.modelTypes.includes(modelType));
}
