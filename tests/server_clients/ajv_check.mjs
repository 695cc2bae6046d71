// An independent verdict on constrained outputs: reads JSONL lines {name, schema, text, valid}
// (tests/constrain/structured_validity_test.cc writes them), validates each text against its
// schema with ajv (draft 2020-12, ajv-formats; pinned in package-lock.json) and fails when ajv's
// verdict differs from `valid`, the engine's own. Prints one summary line.
//
//   node tests/server_clients/ajv_check.mjs OUTPUTS.jsonl
//
// Exit 0: every verdict agrees; 1: a disagreement (each printed); 77: node_modules missing and
// GEMMA_LOCAL_REQUIRE_REFERENCES is not set.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
if (!existsSync(join(here, 'node_modules', 'ajv', 'package.json'))) {
  const why = 'tests/server_clients/node_modules is missing: run tests/server_clients/install.sh';
  if (process.env.GEMMA_LOCAL_REQUIRE_REFERENCES === '1') {
    console.error(`FAIL: ${why} (required here: GEMMA_LOCAL_REQUIRE_REFERENCES is set, as in CI)`);
    process.exit(1);
  }
  console.log(`SKIP: ${why}`);
  process.exit(77);
}
const { default: Ajv2020 } = await import('ajv/dist/2020.js');
const { default: addFormats } = await import('ajv-formats');

const lines = readFileSync(process.argv[2], 'utf8').split('\n').filter((l) => l.length > 0);
const validators = new Map();
let agree = 0;
let validCount = 0;
const disagreements = [];
for (const line of lines) {
  const { name, schema, text, valid } = JSON.parse(line);
  let check = validators.get(name);
  if (!check) {
    // strict: false lets OpenAPI's `nullable`/`example` and format annotations like int64 through.
    const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
    addFormats(ajv);
    check = ajv.compile(schema);
    validators.set(name, check);
  }
  let verdict = false;
  let why = '';
  try {
    verdict = check(JSON.parse(text));
    if (!verdict) why = ajv_errors(check.errors);
  } catch (e) {
    why = `not JSON: ${e.message}`;
  }
  if (verdict) ++validCount;
  if (verdict === valid) {
    ++agree;
  } else {
    disagreements.push(`${name}: engine says ${valid ? 'valid' : 'invalid'}, ajv says ` +
                       `${verdict ? 'valid' : 'invalid'} ${why}\n  text: ${text.slice(0, 300)}`);
  }
}
function ajv_errors(errors) {
  return (errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`).join('; ');
}
console.log(`ajv_check: ${lines.length} outputs, ${validCount} ajv-valid, ${agree} verdicts agree, ` +
            `${disagreements.length} disagree`);
for (const d of disagreements) console.log(`DISAGREE ${d}`);
process.exit(disagreements.length === 0 && lines.length > 0 ? 0 : 1);
