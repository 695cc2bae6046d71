// The test entry points' dependency check, with node's built-ins only (it runs before anything
// from node_modules is imported). Exit 77 (skipped) when node_modules or OpenAI's OpenAPI file is
// missing, unless GEMMA_LOCAL_REQUIRE_REFERENCES=1 (CI), where a missing dependency fails (exit 1).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
// Same default as schema.mjs (which cannot be imported before the check: it needs node_modules).
export const OPENAPI_PATH = process.env.GEMMA_LOCAL_OPENAPI ??
  join(process.env.GEMMA_LOCAL_SHARED_DIR ?? join(here, '..', '..', '..', 'shared'),
       'testdata', 'openai-openapi', 'openapi.yaml');

function skipOrFail(why) {
  if (process.env.GEMMA_LOCAL_REQUIRE_REFERENCES === '1') {
    console.error(`FAIL: ${why} (required here: GEMMA_LOCAL_REQUIRE_REFERENCES is set, as in CI)`);
    process.exit(1);
  }
  console.log(`SKIP: ${why}`);
  process.exit(77);
}

export function requireDependencies() {
  if (!existsSync(join(here, 'node_modules', 'openai', 'package.json'))) {
    skipOrFail('tests/server_clients/node_modules is missing: run tests/server_clients/install.sh');
  }
  if (!existsSync(OPENAPI_PATH)) skipOrFail(`OpenAI's OpenAPI file is missing: ${OPENAPI_PATH}`);
}
