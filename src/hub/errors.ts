/**
 * One line per Hub failure, saying which repo and what to do: 401 (no or a refused token), 403
 * (gated or not allowed), 404 (no such repo or revision), an unreachable endpoint. The token is
 * never part of a message.
 */
import { SwanError } from '../errors.js';

export function hubFailure(e: unknown, repoId: string, revision: string | undefined, hub: { hubUrl: string; accessToken?: string }): Error {
  if (e instanceof SwanError) return e;
  const page = `${hub.hubUrl}/${repoId}`;
  // @huggingface/hub's HubApiError (duck-typed: the client is imported lazily).
  const status = (e as { statusCode?: unknown }).statusCode;
  if (e instanceof Error && typeof status === 'number') {
    const gated = /gated|restricted|authorized list/i.test(e.message);
    switch (status) {
      case 401:
        return new SwanError(
          repoId,
          hub.accessToken
            ? `the Hub refused the token (401): it is invalid or expired; set HF_TOKEN to a valid token (or run \`hf auth login\`)`
            : `needs a token (401): the repo is private or gated, or does not exist; set HF_TOKEN (or run \`hf auth login\`)`,
        );
      case 403:
        return new SwanError(
          repoId,
          gated
            ? `is gated (403): accept its conditions at ${page} with the account of your token, then run again`
            : `access denied (403): your token cannot read this repo; ask its owner for access or use a token with read permission (${page})`,
        );
      case 404:
        return new SwanError(
          repoId,
          `not found on the Hub (404)${revision ? ` at revision ${revision}` : ''} and no local directory has this name: check the id${revision ? ' and --revision' : ''}, or set HF_TOKEN if it is private`,
        );
      default:
        return new SwanError(repoId, `the Hub answered ${status}: ${e.message.split('. URL:')[0]}`);
    }
  }
  const err = e as Error & { cause?: { code?: string; message?: string } };
  if (err?.message === 'fetch failed' || err?.cause?.code) {
    return new SwanError(repoId, `cannot reach ${hub.hubUrl} (${err.cause?.code ?? err.cause?.message ?? err.message}); check the network, or set HF_HUB_OFFLINE=1 to use the cache only`);
  }
  if (err instanceof TypeError && /access token/.test(err.message)) return new SwanError(repoId, `the token is not a Hugging Face token (it must start with hf_); check HF_TOKEN`);
  return new SwanError(repoId, `download failed: ${err?.message ?? String(e)}; run again to resume`);
}
