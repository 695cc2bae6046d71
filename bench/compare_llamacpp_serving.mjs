#!/usr/bin/env node
// Serving comparison: gemma-local's continuous batching (`gemma-local bench --concurrency C`) next
// to llama.cpp's own server (`llama-server -np C`, continuous batching), built natively from the
// source node-llama-cpp 3.21.1 ships (../shared/tools/build-llama-cpp.sh). Same GGUF, same
// threads, the same prompt ids (the bench's generator, below), greedy, exactly G generated ids
// per request; C clients released at once. Runs alternate per level and round (llama-server
// first), so drifts in machine load hit both. Prints a markdown table of medians over the
// rounds, and with --json one object. See bench/README.md.
//
// llama-server is driven over HTTP on loopback (/completion, stream, token-id prompts); gemma-local
// is measured in process (the engine API its server will sit on). Each client times every
// streamed token on arrival; the figures follow bench/README.md's definitions exactly.
import { spawn, execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const opts = {
  model: null,
  threads: 2,
  concurrency: [1, 8],
  promptTokens: 64,
  genTokens: 32,
  sharedPrefix: 0,
  rounds: 3,
  seed: 1,
  extra: [],  // passed to gemma-local bench (e.g. --decode-latency-factor 0)
  gemmaLocal: process.env.GEMMA_LOCAL ?? path.join(root, "build/release/gemma-local"),
  llamaServer: process.env.LLAMA_SERVER ??
    path.join(process.env.XDG_CACHE_HOME ?? path.join(homedir(), ".cache"),
              "llama-cpp-native/build/bin/llama-server"),
  json: false,
};

function usage(message) {
  if (message) console.error(`compare_llamacpp_serving: ${message}`);
  console.error(`usage: bench/compare_llamacpp_serving.mjs --model FILE.gguf [--threads N]
  [--concurrency 1,8] [--prompt-tokens P] [--gen-tokens G] [--shared-prefix N] [--rounds R]
  [--seed S] [--gemma-local PATH] [--llama-server PATH] [--json] [-- extra gemma-local bench flags]`);
  process.exit(2);
}

const args = process.argv.slice(2);
for (let i = 0; i < args.length; ++i) {
  const a = args[i];
  const value = () => {
    if (i + 1 >= args.length) usage(`${a} needs a value`);
    return args[++i];
  };
  const int = (name) => {
    const v = Number(value());
    if (!Number.isInteger(v) || v < 0) usage(`${name} must be a non-negative integer`);
    return v;
  };
  if (a === "--model") opts.model = value();
  else if (a === "--threads") opts.threads = int(a);
  else if (a === "--concurrency") {
    opts.concurrency = value().split(",").map(Number);
    if (opts.concurrency.some((c) => !Number.isInteger(c) || c < 1)) usage("--concurrency: positive integers");
  } else if (a === "--prompt-tokens") opts.promptTokens = int(a);
  else if (a === "--gen-tokens") opts.genTokens = int(a);
  else if (a === "--shared-prefix") opts.sharedPrefix = int(a);
  else if (a === "--rounds") opts.rounds = int(a);
  else if (a === "--seed") opts.seed = int(a);
  else if (a === "--gemma-local") opts.gemmaLocal = value();
  else if (a === "--llama-server") opts.llamaServer = value();
  else if (a === "--json") opts.json = true;
  else if (a === "--") { opts.extra = args.slice(i + 1); break; }
  else usage(`unknown argument ${a}`);
}
if (!opts.model) usage("--model is required");
for (const [what, file] of [["model", opts.model], ["gemma-local", opts.gemmaLocal],
                            ["llama-server", opts.llamaServer]]) {
  if (!existsSync(file)) usage(`${what} not found: ${file}`);
}
if (opts.promptTokens < 2 || opts.genTokens < 2) usage("--prompt-tokens and --gen-tokens must be >= 2");
if (opts.sharedPrefix >= opts.promptTokens) usage("--shared-prefix must be < --prompt-tokens");

// The bench's prompt ids (tools/cli/bench_serving.cc ServingPrompts; change both or neither).
const kBos = 2, kFirstId = 256;
function lcgIds(n, vocab, x0, out) {
  const range = vocab - kFirstId;
  let x = x0 >>> 0;
  for (let i = 0; i < n; ++i) {
    x = (Math.imul(1664525, x) + 1013904223) >>> 0;
    out.push(kFirstId + ((x >>> 8) % range));
  }
}
function servingPrompts(clients, vocab) {
  const shared = Math.max(opts.sharedPrefix, 1);
  const common = [kBos];
  lcgIds(shared - 1, vocab, opts.seed, common);
  const prompts = [];
  for (let i = 0; i < clients; ++i) {
    const ids = common.slice();
    ids.push(kFirstId + (i % (vocab - kFirstId)));
    lcgIds(opts.promptTokens - shared - 1, vocab,
           (opts.seed + Math.imul(0x9E3779B9 | 0, i + 1)) >>> 0, ids);
    prompts.push(ids);
  }
  return prompts;
}

// Nearest-rank percentile (bench/README.md).
function percentile(values, p) {
  const v = values.slice().sort((a, b) => a - b);
  return v[Math.max(0, Math.ceil((p * v.length) / 100) - 1)];
}
const median = (v) => percentile(v, 50);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// One client: a streamed /completion; returns [submit time, arrival time of every token].
async function llamaClient(port, prompt) {
  const body = {
    prompt, n_predict: opts.genTokens, ignore_eos: true, stream: true, temperature: 0, top_k: 1,
    cache_prompt: true, return_tokens: true,
  };
  const submitted = performance.now();
  const res = await fetch(`http://127.0.0.1:${port}/completion`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`llama-server: HTTP ${res.status}: ${await res.text()}`);
  const times = [];
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of res.body) {
    const now = performance.now();
    buffer += decoder.decode(chunk, { stream: true });
    let nl;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, nl).trim();
      buffer = buffer.slice(nl + 1);
      if (!line.startsWith("data:")) continue;
      const payload = line.slice(5).trim();
      if (payload === "[DONE]") continue;
      const event = JSON.parse(payload);
      const n = Array.isArray(event.tokens) ? event.tokens.length : (event.stop ? 0 : 1);
      for (let k = 0; k < n; ++k) times.push(now);
    }
  }
  if (times.length !== opts.genTokens) {
    throw new Error(`llama-server streamed ${times.length} tokens, expected ${opts.genTokens}`);
  }
  return { submitted, times };
}

function figures(clients) {
  const firsts = clients.map((c) => c.times[0]);
  const lasts = clients.map((c) => c.times[c.times.length - 1]);
  const tFirst = Math.min(...firsts), tLast = Math.max(...lasts);
  const itl = [];
  for (const c of clients) for (let i = 1; i < c.times.length; ++i) itl.push(c.times[i] - c.times[i - 1]);
  const ttft = clients.map((c) => c.times[0] - c.submitted);
  return {
    aggregate_decode_tokens_per_s: (clients.length * (opts.genTokens - 1)) / ((tLast - tFirst) / 1000),
    ttft_ms_p50: percentile(ttft, 50), ttft_ms_p99: percentile(ttft, 99),
    itl_ms_p50: percentile(itl, 50), itl_ms_p99: percentile(itl, 99),
  };
}

async function runLlamaServer(c, vocab) {
  const port = 20000 + Math.floor(Math.random() * 20000);
  // Each slot gets n_ctx / np positions: room for one request per slot.
  const ctx = c * (opts.promptTokens + opts.genTokens + 16);
  const server = spawn(opts.llamaServer, [
    "-m", opts.model, "-t", String(opts.threads), "-tb", String(opts.threads), "-np", String(c),
    "-c", String(ctx), "--host", "127.0.0.1", "--port", String(port), "-ngl", "0",
  ], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  server.stderr.on("data", (d) => { log = (log + d).slice(-4000); });
  try {
    const deadline = performance.now() + 120000;
    for (;;) {
      if (server.exitCode !== null) throw new Error(`llama-server exited: ${log}`);
      try {
        const r = await fetch(`http://127.0.0.1:${port}/health`);
        if (r.ok) break;
      } catch { /* not listening yet */ }
      if (performance.now() > deadline) throw new Error(`llama-server did not start: ${log}`);
      await sleep(200);
    }
    // Warm-up as the bench does: a short prompt no measured prompt shares beyond BOS.
    const warm = [kBos];
    lcgIds(15, vocab, (~opts.seed) >>> 0, warm);
    await fetch(`http://127.0.0.1:${port}/completion`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ prompt: warm, n_predict: 2, cache_prompt: false }),
    }).then((r) => r.text());
    const prompts = servingPrompts(c, vocab);
    const clients = await Promise.all(prompts.map((p) => llamaClient(port, p)));
    return figures(clients);
  } finally {
    server.kill("SIGTERM");
    await new Promise((r) => (server.exitCode !== null ? r() : server.once("exit", r)));
  }
}

function runGemmaLocal(c) {
  const out = execFileSync(opts.gemmaLocal, [
    "bench", "--model", opts.model, "--threads", String(opts.threads), "--concurrency", String(c),
    "--prompt-tokens", String(opts.promptTokens), "--gen-tokens", String(opts.genTokens),
    "--shared-prefix", String(opts.sharedPrefix), "--seed", String(opts.seed), "--json",
    ...opts.extra,
  ], { encoding: "utf8", maxBuffer: 64 << 20, stdio: ["ignore", "pipe", "inherit"] });
  return JSON.parse(out).levels[0];
}

const info = JSON.parse(execFileSync(opts.gemmaLocal, ["inspect", "--json", opts.model], { encoding: "utf8" }));
const vocab = info.vocab_size;
const keys = ["aggregate_decode_tokens_per_s", "ttft_ms_p50", "ttft_ms_p99", "itl_ms_p50", "itl_ms_p99"];
const results = [];
for (const c of opts.concurrency) {
  const runs = { llama: [], gemma: [] };
  for (let r = 0; r < opts.rounds; ++r) {
    runs.llama.push(await runLlamaServer(c, vocab));
    runs.gemma.push(runGemmaLocal(c));
    if (!opts.json) {
      process.stderr.write(`C=${c} round ${r + 1}: llama-server ` +
        `${runs.llama[r].aggregate_decode_tokens_per_s.toFixed(1)} tok/s, gemma-local ` +
        `${runs.gemma[r].aggregate_decode_tokens_per_s.toFixed(1)} tok/s\n`);
    }
  }
  const med = (side) => Object.fromEntries(keys.map((k) => [k, median(runs[side].map((x) => x[k]))]));
  results.push({ concurrency: c, llama_server: med("llama"), gemma_local: med("gemma"), runs });
}

if (opts.json) {
  console.log(JSON.stringify({ model: opts.model, threads: opts.threads, prompt_tokens: opts.promptTokens,
    gen_tokens: opts.genTokens, shared_prefix: opts.sharedPrefix, rounds: opts.rounds, seed: opts.seed,
    gemma_local_flags: opts.extra, levels: results }, null, 1));
} else {
  console.log(`| C | llama-server tok/s | gemma-local tok/s | ratio | TTFT p50 ms (llama / ours) | ` +
              `ITL p50 ms (llama / ours) | ITL p99 ms (llama / ours) |`);
  console.log("|---|---|---|---|---|---|---|");
  for (const r of results) {
    const l = r.llama_server, g = r.gemma_local, f = (x) => x.toFixed(0);
    console.log(`| ${r.concurrency} | ${l.aggregate_decode_tokens_per_s.toFixed(1)} | ` +
      `${g.aggregate_decode_tokens_per_s.toFixed(1)} | ` +
      `${(g.aggregate_decode_tokens_per_s / l.aggregate_decode_tokens_per_s).toFixed(2)}x | ` +
      `${f(l.ttft_ms_p50)} / ${f(g.ttft_ms_p50)} | ${f(l.itl_ms_p50)} / ${f(g.itl_ms_p50)} | ` +
      `${f(l.itl_ms_p99)} / ${f(g.itl_ms_p99)} |`);
  }
}
