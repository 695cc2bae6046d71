// Issue 14: existing OpenAI clients use `gemma-local serve` unchanged. The official `openai` npm
// client (pinned in package-lock.json) drives a running serve on a random-weight model; every
// response body and stream event it receives is validated against OpenAI's published OpenAPI
// schema (../shared/testdata/openai-openapi/openapi.yaml), and the client's TypeScript types are
// checked against the same captured bodies.
//
//   node tests/server_clients/openai_client_test.mjs --bin build/release/gemma-local
//   (or GEMMA_LOCAL_BIN=... node tests/server_clients/openai_client_test.mjs)
//
// Exit 0: pass; 1: a failure; 77: skipped (node_modules or the shared OpenAPI file missing),
// unless GEMMA_LOCAL_REQUIRE_REFERENCES=1 (CI), where a missing dependency is a failure.
import { requireDependencies } from './deps.mjs';

requireDependencies();

// Watchdog: the suite stops by itself, whatever hangs (the server is SIGKILLed on exit).
setTimeout(() => {
  console.error('FAIL: the suite ran past 100 s');
  process.exit(1);
}, 100_000).unref();

await import('./suite.mjs');
