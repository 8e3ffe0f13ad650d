/**
 * The Hub endpoint and the user's token, where huggingface_hub finds them: HF_ENDPOINT; HF_TOKEN
 * (or the older HUGGING_FACE_HUB_TOKEN), else the file `huggingface-cli login` writes
 * (HF_TOKEN_PATH, default $HF_HOME/token). The token is sent to the endpoint only, never printed.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { hfHome } from './cache.js';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';

export function hubEndpoint(env: NodeJS.ProcessEnv = process.env): string {
  return (env.HF_ENDPOINT || DEFAULT_ENDPOINT).replace(/\/+$/, '');
}

export function hubToken(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const fromEnv = env.HF_TOKEN || env.HUGGING_FACE_HUB_TOKEN;
  if (fromEnv) return fromEnv.trim();
  const file = env.HF_TOKEN_PATH || join(hfHome(env), 'token');
  if (!existsSync(file)) return undefined;
  const t = readFileSync(file, 'utf8').trim();
  return t || undefined;
}
