import { gemma2 } from './gemma2.js';
import { gemma3Text } from './gemma3-text.js';
import { granite } from './granite.js';
import { llama } from './llama.js';
import { mixtral, qwen2Moe, qwen3Moe } from './moe.js';
import { olmo2 } from './olmo2.js';
import { phi3 } from './phi3.js';
import { qwen2 } from './qwen2.js';
import { qwen3 } from './qwen3.js';
import type { Architecture } from './types.js';

export type { Architecture, TensorRecord, TensorRole } from './types.js';

const ARCHITECTURES: Architecture[] = [llama, qwen2, qwen3, qwen2Moe, qwen3Moe, mixtral, gemma2, gemma3Text, phi3, olmo2, granite];

export const SUPPORTED_MODEL_TYPES = ARCHITECTURES.flatMap((a) => a.modelTypes);

/** The architecture for config.model_type, or undefined when swan does not support it. */
export function architectureFor(modelType: unknown): Architecture | undefined {
  return ARCHITECTURES.find((a) => typeof modelType === 'string' && a.modelTypes.includes(modelType));
}
