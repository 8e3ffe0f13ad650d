/**
 * swan's table of config field types (src/arch/config-types.ts) against the real transformers that
 * mlx_lm.load goes through: every value transformers' config class refuses, swan refuses too.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { configTypeProblem, typedConfigFields } from '../src/arch/config-types.js';
import { architectureFor } from '../src/arch/index.js';
import { parsePyJson, type PyObject } from '../src/io/pyjson.js';
import { runPython } from '../src/python.js';
import { PY, STORIES, tempDir } from './helpers/paths.js';

const skip = process.env.SWAN_SKIP_PYTHON ? 'needs Python (SWAN_SKIP_PYTHON is set)' : false;
const tmp = tempDir();
after(() => tmp.cleanup());

/** Values as JSON text, so that 1 and 1.0 stay apart as Python sees them. */
const VALUES = ['0', '1', '-1', '1.5', '0.0', '1e-05', 'true', 'false', 'null', '"64"', '"silu"', '[]', '[1, 2]', '["a"]', '{}', '{"a": 1}'];

/** swan's whole config verdict: the architecture's own checks (sizes it derives), then the types. */
function refuses(config: PyObject, modelType: string): boolean {
  const arch = architectureFor(modelType)!;
  try {
    arch.expectedTensors(config, arch.tied(config));
  } catch {
    return true;
  }
  return configTypeProblem(config, modelType) !== null;
}

test('every config value transformers refuses, swan refuses (llama, mistral, qwen2, qwen3)', { skip }, () => {
  const base = JSON.parse(readFileSync(join(STORIES, 'config.json'), 'utf8'));
  const cases: { model_type: string; key: string; value: unknown; text: string }[] = [];
  for (const modelType of ['llama', 'mistral', 'qwen2', 'qwen3']) {
    for (const key of typedConfigFields(modelType)) for (const text of VALUES) cases.push({ model_type: modelType, key, value: JSON.parse(text), text });
  }
  const casesFile = join(tmp.dir, 'cases.json');
  const baseFile = join(tmp.dir, 'base.json');
  // Python's json keeps 0.0 a float; write each value's own text.
  writeFileSync(casesFile, `[${cases.map((c) => `{"model_type": ${JSON.stringify(c.model_type)}, "key": ${JSON.stringify(c.key)}, "value": ${c.text}}`).join(',\n')}]`);
  writeFileSync(baseFile, JSON.stringify(base));
  const accepted = JSON.parse(runPython(join(PY, 'config_verdicts.py'), [casesFile, baseFile])) as boolean[];
  assert.equal(accepted.length, cases.length);
  const misses: string[] = [];
  let refusedByBoth = 0;
  cases.forEach((c, i) => {
    const config = parsePyJson(JSON.stringify({ ...base, model_type: c.model_type }).replace(/}$/, `, ${JSON.stringify(c.key)}: ${c.text}}`)) as PyObject;
    const swanRefuses = refuses(config, c.model_type);
    if (!accepted[i] && !swanRefuses) misses.push(`${c.model_type} ${c.key} = ${c.text}`);
    if (!accepted[i] && swanRefuses) refusedByBoth++;
  });
  assert.deepEqual(misses, [], 'transformers refuses these, swan would write an output mlx_lm.load cannot read');
  assert.ok(refusedByBoth > 100, `the check must exercise refusals (${refusedByBoth})`);
});

test('the stories260K config passes; a bool initializer_range or an int rms_norm_eps is named', () => {
  const base = readFileSync(join(STORIES, 'config.json'), 'utf8');
  assert.equal(configTypeProblem(parsePyJson(base) as PyObject, 'llama'), null);
  const bad = (edit: string) => configTypeProblem(parsePyJson(base.replace(/}\s*$/, `, ${edit}}`)) as PyObject, 'llama');
  assert.match(bad('"initializer_range": false')!, /^initializer_range is false: .* needs a float/);
  assert.match(bad('"rms_norm_eps": 1')!, /^rms_norm_eps is 1: .* needs a float/);
  assert.equal(bad('"rms_norm_eps": 1.0'), null);
});
