import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PACKAGE_ROOT } from '../../src/python.js';

export const REPO = PACKAGE_ROOT;
/** ../shared beside the repo (read-only fixtures and spec). */
export const SHARED = resolve(REPO, '..', 'shared');
export const FIXTURES = join(SHARED, 'fixtures');
export const STORIES = join(FIXTURES, 'stories260K');
/** Python helper scripts used by the tests. */
export const PY = join(REPO, 'test', 'py');
/** The built CLI entry. */
export const CLI = join(REPO, 'dist', 'src', 'cli', 'main.js');

export function tempDir(prefix = 'swan-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
