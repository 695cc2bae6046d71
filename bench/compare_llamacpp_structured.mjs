#!/usr/bin/env node
// Structured output next to llama.cpp's: the same GGUF behind native `llama-server` (built from
// the source node-llama-cpp 3.21.1 ships, ../shared/tools/build-llama-cpp.sh) and `gemma-local
// serve`; every schema of the corpus (tests/constrain/corpus/handwritten.json) sent to both as
// OpenAI's `response_format: {type: "json_schema"}` on /v1/chat/completions, greedy, one request
// at a time. Per server: generated tokens per second (client-side wall time of each request), and
// how many replies ajv (draft 2020-12 + formats, pinned in tests/server_clients) accepts, how many
// are unfinished (finish_reason "length" or not JSON), how many schemas were refused (HTTP 4xx).
// On a random-weight model nothing but the constraint shapes the output. Prints a markdown table,
// then the schemas where the two differ.
//
//   node bench/compare_llamacpp_structured.mjs --model FILE.gguf [--threads 2] [--max-tokens 256]
//        [--corpus FILE] [--only llama|gemma]
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { homedir } from "node:os";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(path.join(root, "tests/server_clients/package.json"));
const Ajv2020 = require("ajv/dist/2020.js").default;
const addFormats = require("ajv-formats").default;

const opts = {
  model: null, threads: 2, maxTokens: 256, only: null,
  corpus: path.join(root, "tests/constrain/corpus/handwritten.json"),
  gemmaLocal: process.env.GEMMA_LOCAL ?? path.join(root, "build/release/gemma-local"),
  llamaServer: process.env.LLAMA_SERVER ??
    path.join(homedir(), ".cache/llama-cpp-native/build/bin/llama-server"),
};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; ++i) {
  const v = () => argv[++i];
  switch (argv[i]) {
    case "--model": opts.model = v(); break;
    case "--threads": opts.threads = Number(v()); break;
    case "--max-tokens": opts.maxTokens = Number(v()); break;
    case "--corpus": opts.corpus = v(); break;
    case "--only": opts.only = v(); break;
    default: console.error(`unknown flag ${argv[i]}`); process.exit(2);
  }
}
if (!opts.model) { console.error("give --model FILE.gguf"); process.exit(2); }

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Starts a server, waits until GET /health answers 200; resolves { port, stop }.
async function start(name, file, args, port, portFromStdout) {
  const child = spawn(file, args, { stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  child.stderr.on("data", (d) => { log = (log + d).slice(-3000); });
  process.on("exit", () => child.kill("SIGKILL"));
  if (portFromStdout) {
    port = await new Promise((resolve, reject) => {
      readline.createInterface({ input: child.stdout }).on("line", (line) => {
        const m = /^listening on http:\/\/[^:]+:(\d+)/.exec(line);
        if (m) resolve(Number(m[1]));
      });
      child.once("exit", () => reject(new Error(`${name} exited: ${log}`)));
    });
  } else {
    child.stdout.resume();
  }
  for (const deadline = Date.now() + 180000; ;) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/health`);
      await r.text();
      if (r.ok) break;
    } catch { /* not yet */ }
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`${name}: ${log}`);
    await sleep(200);
  }
  const stop = async () => {
    const gone = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    setTimeout(() => child.kill("SIGKILL"), 10000).unref();
    await gone;
  };
  return { port, stop };
}

const corpus = JSON.parse(readFileSync(opts.corpus, "utf8"));
const prompt = "Reply with a JSON value.";

async function runAll(server) {
  const results = [];
  for (const { name, schema } of corpus) {
    const body = {
      messages: [{ role: "user", content: prompt }],
      response_format: { type: "json_schema", json_schema: { name: "v", strict: true, schema } },
      max_tokens: opts.maxTokens, temperature: 0,
    };
    const t0 = performance.now();
    const r = await fetch(`http://127.0.0.1:${server.port}/v1/chat/completions`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    const text = await r.text();
    const ms = performance.now() - t0;
    if (!r.ok) {
      results.push({ name, refused: true, status: r.status, why: text.slice(0, 200) });
      continue;
    }
    const j = JSON.parse(text);
    results.push({ name, content: j.choices[0].message.content ?? "",
                   finish: j.choices[0].finish_reason, tokens: j.usage?.completion_tokens ?? 0, ms });
  }
  return results;
}

function judge(results) {
  const out = { valid: 0, invalid: 0, unfinished: 0, refused: 0, tokens: 0, ms: 0, perSchema: {} };
  for (const r of results) {
    const schema = corpus.find((c) => c.name === r.name).schema;
    let verdict;
    if (r.refused) {
      verdict = `refused (${r.status})`;
      ++out.refused;
    } else {
      out.tokens += r.tokens;
      out.ms += r.ms;
      let value;
      try { value = JSON.parse(r.content); } catch { value = undefined; }
      if (value === undefined || r.finish === "length") {
        verdict = `unfinished (${r.tokens} tokens)`;
        ++out.unfinished;
      } else {
        const ajv = new Ajv2020({ strict: false, allErrors: true });
        addFormats(ajv);
        const check = ajv.compile(schema);
        if (check(value)) {
          verdict = "valid";
          ++out.valid;
        } else {
          verdict = `invalid: ${(check.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message}`).join("; ")}`;
          ++out.invalid;
        }
      }
    }
    out.perSchema[r.name] = verdict;
  }
  return out;
}

const servers = {
  llama: () => {
    const port = 20000 + Math.floor(Math.random() * 20000);
    return start("llama-server", opts.llamaServer, ["-m", opts.model, "-t", String(opts.threads),
      "-tb", String(opts.threads), "-np", "1", "-c", "4096", "--host", "127.0.0.1",
      "--port", String(port), "-ngl", "0", "--jinja"], port, false);
  },
  gemma: () => start("gemma-local serve", opts.gemmaLocal, ["serve", "--model", opts.model,
    "--host", "127.0.0.1", "--port", "0", "--threads", String(opts.threads)], 0, true),
};
const judged = {};
for (const which of ["llama", "gemma"]) {
  if (opts.only && opts.only !== which) continue;
  const server = await servers[which]();
  try {
    judged[which] = judge(await runAll(server));
  } finally {
    await server.stop();
  }
}
const names = { llama: "llama.cpp llama-server", gemma: "gemma-local serve" };
console.log(`| server | schemas | ajv-valid | invalid | unfinished | refused | tok/s |`);
console.log(`|---|---|---|---|---|---|---|`);
for (const [k, v] of Object.entries(judged)) {
  console.log(`| ${names[k]} | ${corpus.length} | ${v.valid} | ${v.invalid} | ${v.unfinished} | ` +
              `${v.refused} | ${(v.tokens / (v.ms / 1000)).toFixed(1)} |`);
}
if (judged.llama && judged.gemma) {
  console.log("\nschemas where the two differ:");
  for (const { name } of corpus) {
    const a = judged.llama.perSchema[name], b = judged.gemma.perSchema[name];
    if (a !== b) console.log(`- ${name}: llama.cpp ${a}; gemma-local ${b}`);
  }
}
