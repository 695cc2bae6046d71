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
// is measured in process (the engine API its server sits on), or with --mode serve as
// `gemma-local serve --parallel C` over HTTP (/v1/completions) by the same client code. Each
// client times every streamed token on arrival; the figures follow bench/README.md's definitions.
import { spawn, execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import readline from "node:readline";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const opts = {
  model: null,
  mode: "bench",  // bench: gemma-local in process; serve: `gemma-local serve` over HTTP
  threads: 2,
  concurrency: null,  // default [1, 8] (bench), [1, 8, 32] (serve)
  requestsPerClient: 1,
  gemmaLogprobs: false,
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
  console.error(`usage: bench/compare_llamacpp_serving.mjs --model FILE.gguf [--mode bench|serve]
  [--threads N] [--concurrency 1,8] [--prompt-tokens P] [--gen-tokens G] [--shared-prefix N]
  [--rounds R] [--seed S] [--requests-per-client K] [--gemma-logprobs] [--gemma-local PATH]
  [--llama-server PATH] [--json] [-- extra gemma-local bench/serve flags]`);
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
  else if (a === "--mode") {
    opts.mode = value();
    if (opts.mode !== "bench" && opts.mode !== "serve") usage("--mode: bench or serve");
  } else if (a === "--requests-per-client") opts.requestsPerClient = int(a);
  else if (a === "--gemma-logprobs") opts.gemmaLogprobs = true;
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
opts.concurrency ??= opts.mode === "serve" ? [1, 8, 32] : [1, 8];
if (opts.requestsPerClient < 1) usage("--requests-per-client must be >= 1");
if (opts.mode === "bench" && (opts.requestsPerClient !== 1 || opts.gemmaLogprobs)) {
  usage("--requests-per-client and --gemma-logprobs need --mode serve");
}
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

// The two servers, as the shared client below sees them: where to POST, the request body for a
// prompt, how many generated ids one streamed event carries, and the total the server reports at
// the end (null on other events).
const llamaApi = {
  name: "llama-server",
  path: "/completion",
  body: (prompt, n) => ({
    prompt, n_predict: n, ignore_eos: true, stream: true, temperature: 0, top_k: 1,
    cache_prompt: true, return_tokens: true,
  }),
  // Streamed: a plain reply of text that is not valid UTF-8 (random weights) is a 500 here.
  warmBody: (prompt) => ({ prompt, n_predict: 2, cache_prompt: false, stream: true }),
  tokensIn: (e) => (Array.isArray(e.tokens) ? e.tokens.length : (e.stop ? 0 : 1)),
  totalIn: (e) => (e.stop ? e.tokens_predicted : null),
};
const gemmaApi = {
  name: "gemma-local",
  path: "/v1/completions",
  body: (prompt, n) => ({
    prompt, max_tokens: n, temperature: 0, ignore_eos: true, stream: true,
    stream_options: { include_usage: true }, ...(opts.gemmaLogprobs ? { logprobs: 0 } : {}),
  }),
  warmBody: (prompt) => ({ prompt, max_tokens: 2, temperature: 0, stream: true }),
  // With logprobs each event lists its ids; without, a chunk with text stands for one id.
  tokensIn: (e) => {
    const choice = e.choices?.[0];
    if (!choice) return 0;
    if (Array.isArray(choice.logprobs?.tokens)) return choice.logprobs.tokens.length;
    return choice.text ? 1 : 0;
  },
  totalIn: (e) => (e.usage ? e.usage.completion_tokens : null),
};

// One client request, the same code for both servers: a streamed POST; every event is timed on
// arrival (when its bytes are read) and stamps the ids it carries. Ids the server generated but
// did not stream on their own (held back, e.g. incomplete UTF-8) are stamped with the arrival
// of the event that reports the total, and counted in `unstreamed`.
async function streamRequest(api, port, prompt) {
  const submitted = performance.now();
  let res;
  try {
    res = await fetch(`http://127.0.0.1:${port}${api.path}`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(api.body(prompt, opts.genTokens)),
    });
  } catch (e) {
    throw new Error(`${api.name}: ${e.message}: ${e.cause?.code ?? ""} ${e.cause?.message ?? ""}`);
  }
  if (!res.ok) throw new Error(`${api.name}: HTTP ${res.status}: ${await res.text()}`);
  const times = [];
  let total = null, totalAt = 0;
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
      if (event.error) throw new Error(`${api.name}: ${JSON.stringify(event.error)}`);
      const n = api.tokensIn(event);
      for (let k = 0; k < n; ++k) times.push(now);
      const t = api.totalIn(event);
      if (t !== null && t !== undefined) { total = t; totalAt = now; }
    }
  }
  const ended = performance.now();
  if (total === null) total = times.length;
  if (total !== opts.genTokens || times.length > total) {
    throw new Error(`${api.name}: generated ${total} ids (${times.length} streamed), expected ${opts.genTokens}`);
  }
  const unstreamed = total - times.length;
  while (times.length < total) times.push(totalAt);
  return { submitted, times, ended, unstreamed };
}

// bench/README.md's figures over a level's requests; `start` is the release of the clients.
function figures(requests, start) {
  const firsts = requests.map((c) => c.times[0]);
  const lasts = requests.map((c) => c.times[c.times.length - 1]);
  const tFirst = Math.min(...firsts), tLast = Math.max(...lasts);
  const itl = [];
  for (const c of requests) for (let i = 1; i < c.times.length; ++i) itl.push(c.times[i] - c.times[i - 1]);
  const ttft = requests.map((c) => c.times[0] - c.submitted);
  const generated = requests.reduce((s, c) => s + c.times.length, 0);
  const out = {
    aggregate_decode_tokens_per_s: (generated - requests.length) / ((tLast - tFirst) / 1000),
    ttft_ms_p50: percentile(ttft, 50), ttft_ms_p99: percentile(ttft, 99),
    itl_ms_p50: percentile(itl, 50), itl_ms_p99: percentile(itl, 99),
  };
  if (start !== undefined) {
    const wall = (Math.max(...requests.map((c) => c.ended)) - start) / 1000;
    out.requests_per_s = requests.length / wall;
    out.tokens_per_s = generated / wall;
    out.wall_ms = wall * 1000;
    out.requests = requests.length;
    out.unstreamed_tokens = requests.reduce((s, c) => s + c.unstreamed, 0);
    // Ids without an event of their own have no arrival time: no latencies then.
    if (out.unstreamed_tokens > 0) {
      for (const k of ["aggregate_decode_tokens_per_s", "ttft_ms_p50", "ttft_ms_p99", "itl_ms_p50", "itl_ms_p99"]) out[k] = null;
    }
  }
  return out;
}

// Starts a server process, learns its port (`portFrom` reads it from stdout, else `port`), and
// waits for GET /health to answer 200 (both servers answer 503 while loading).
async function startServer(name, file, argv, port, portFromStdout) {
  const server = spawn(file, argv, { stdio: ["ignore", portFromStdout ? "pipe" : "ignore", "pipe"] });
  let log = "";
  server.stderr.on("data", (d) => { log = (log + d).slice(-4000); });
  let exited = false;
  server.once("exit", () => { exited = true; });
  const stop = async () => {
    if (!exited) {
      const gone = new Promise((r) => server.once("exit", r));
      server.kill("SIGTERM");
      const timer = setTimeout(() => { if (!exited) server.kill("SIGKILL"); }, 15000);
      await gone;
      clearTimeout(timer);
    }
  };
  try {
    if (portFromStdout) {
      port = await new Promise((resolve, reject) => {
        const lines = readline.createInterface({ input: server.stdout });
        lines.on("line", (line) => {
          const m = /^listening on http:\/\/[^:]+:(\d+)/.exec(line);
          if (m) resolve(Number(m[1]));
        });
        server.once("exit", () => reject(new Error(`${name} exited: ${log}`)));
      });
    }
    const deadline = performance.now() + 180000;
    for (;;) {
      if (exited) throw new Error(`${name} exited: ${log}`);
      try {
        const r = await fetch(`http://127.0.0.1:${port}/health`);
        await r.text();
        if (r.ok) break;
      } catch { /* not listening yet */ }
      if (performance.now() > deadline) throw new Error(`${name} did not start: ${log}`);
      await sleep(200);
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return { port, stop };
}

function startLlamaServer(c) {
  const port = 20000 + Math.floor(Math.random() * 20000);
  // Each slot gets n_ctx / np positions: room for one request per slot.
  const ctx = c * (opts.promptTokens + opts.genTokens + 16);
  return startServer("llama-server", opts.llamaServer, [
    "-m", opts.model, "-t", String(opts.threads), "-tb", String(opts.threads), "-np", String(c),
    "-c", String(ctx), "--host", "127.0.0.1", "--port", String(port), "-ngl", "0",
  ], port, false);
}

function startGemmaServe(c) {
  return startServer("gemma-local serve", opts.gemmaLocal, [
    "serve", "--model", opts.model, "--host", "127.0.0.1", "--port", "0",
    "--threads", String(opts.threads), "--parallel", String(c), ...opts.extra,
  ], 0, true);
}

// One level on one server over HTTP: a fresh process, one warm-up request (the bench's warm-up
// prompt), then C clients released at once, each sending K requests one after another (client
// i's k-th prompt is ServingPrompts' prompt k·C + i, so no two requests share more than the
// shared prefix).
async function runHttpLevel(api, start, c, vocab) {
  const server = await start(c);
  try {
    const warm = [kBos];
    lcgIds(15, vocab, (~opts.seed) >>> 0, warm);
    const w = await fetch(`http://127.0.0.1:${server.port}${api.path}`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(api.warmBody(warm)),
    });
    const wText = await w.text();
    if (!w.ok) throw new Error(`${api.name} warm-up: HTTP ${w.status}: ${wText}`);
    const k = opts.mode === "serve" ? opts.requestsPerClient : 1;
    const prompts = servingPrompts(c * k, vocab);
    const released = performance.now();
    const perClient = await Promise.all(Array.from({ length: c }, async (_, i) => {
      const done = [];
      for (let j = 0; j < k; ++j) done.push(await streamRequest(api, server.port, prompts[j * c + i]));
      return done;
    }));
    const requests = perClient.flat();
    if (opts.mode === "bench" && requests.some((q) => q.unstreamed > 0)) {
      throw new Error(`${api.name} streamed fewer than ${opts.genTokens} tokens in a request`);
    }
    return figures(requests, opts.mode === "serve" ? released : undefined);
  } finally {
    await server.stop();
  }
}

function runGemmaLocalBench(c) {
  const out = execFileSync(opts.gemmaLocal, [
    "bench", "--model", opts.model, "--threads", String(opts.threads), "--concurrency", String(c),
    "--prompt-tokens", String(opts.promptTokens), "--gen-tokens", String(opts.genTokens),
    "--shared-prefix", String(opts.sharedPrefix), "--seed", String(opts.seed), "--json",
    ...opts.extra,
  ], { encoding: "utf8", maxBuffer: 64 << 20, stdio: ["ignore", "pipe", "inherit"] });
  return JSON.parse(out).levels[0];
}

function machine() {
  let cpu = "unknown CPU";
  try {
    const m = /^Model name:\s*(.+)$/m.exec(execFileSync("lscpu", { encoding: "utf8", env: { ...process.env, LC_ALL: "C" } }));
    if (m) cpu = m[1].trim();
  } catch { /* no lscpu */ }
  let cores = "?";
  try { cores = execFileSync("nproc", { encoding: "utf8" }).trim(); } catch { /* no nproc */ }
  return `${cpu}, ${cores} cores`;
}

const info = JSON.parse(execFileSync(opts.gemmaLocal, ["inspect", "--json", opts.model], { encoding: "utf8" }));
const vocab = info.vocab_size;
if (opts.mode === "serve" && Math.max(...opts.concurrency) * opts.requestsPerClient > vocab - kFirstId) {
  usage("more requests in a level than distinct prompts (C·K > n_vocab − 256)");
}
const keys = ["aggregate_decode_tokens_per_s", "ttft_ms_p50", "ttft_ms_p99", "itl_ms_p50", "itl_ms_p99"];
if (opts.mode === "serve") keys.push("requests_per_s", "tokens_per_s", "wall_ms", "unstreamed_tokens");
const results = [];
for (const c of opts.concurrency) {
  const runs = { llama: [], gemma: [] };
  for (let r = 0; r < opts.rounds; ++r) {
    runs.llama.push(await runHttpLevel(llamaApi, startLlamaServer, c, vocab));
    runs.gemma.push(opts.mode === "serve" ? await runHttpLevel(gemmaApi, startGemmaServe, c, vocab)
                                           : runGemmaLocalBench(c));
    if (!opts.json) {
      const l = runs.llama[r], g = runs.gemma[r];
      process.stderr.write(`C=${c} round ${r + 1}: llama-server ` +
        (opts.mode === "serve" ? `${l.requests_per_s.toFixed(2)} req/s ${l.tokens_per_s.toFixed(1)} tok/s, ` +
                                 `gemma-local ${g.requests_per_s.toFixed(2)} req/s ${g.tokens_per_s.toFixed(1)} tok/s\n`
                               : `${l.aggregate_decode_tokens_per_s.toFixed(1)} tok/s, gemma-local ` +
                                 `${g.aggregate_decode_tokens_per_s.toFixed(1)} tok/s\n`));
    }
  }
  const med = (side) => Object.fromEntries(keys.map((k) => {
    const v = runs[side].map((x) => x[k]);
    return [k, v.some((x) => x === null) ? null : median(v)];
  }));
  results.push({ concurrency: c, llama_server: med("llama"), gemma_local: med("gemma"), runs });
}

const command = ["node", path.relative(process.cwd(), fileURLToPath(import.meta.url)) || "bench/compare_llamacpp_serving.mjs",
                 ...process.argv.slice(2)].join(" ");
const host = machine();
if (opts.json) {
  console.log(JSON.stringify({ command, machine: host, mode: opts.mode, model: opts.model,
    threads: opts.threads, prompt_tokens: opts.promptTokens, gen_tokens: opts.genTokens,
    shared_prefix: opts.sharedPrefix, requests_per_client: opts.mode === "serve" ? opts.requestsPerClient : 1,
    gemma_logprobs: opts.gemmaLogprobs, rounds: opts.rounds, seed: opts.seed,
    gemma_local_flags: opts.extra, levels: results }, null, 1));
} else {
  const f = (x) => x.toFixed(0);
  console.log(`command: \`${command}\``);
  console.log(`model: ${opts.model}; threads: ${opts.threads}; prompt ${opts.promptTokens} / gen ` +
              `${opts.genTokens} tokens` + (opts.mode === "serve" ? `; ${opts.requestsPerClient} request(s) per client` : "") +
              `; medians of ${opts.rounds} round(s); machine: ${host}\n`);
  if (opts.mode === "serve") {
    console.log(`| C | llama-server req/s | gemma-local req/s | ratio | llama-server tok/s | gemma-local tok/s | ` +
                `ratio | TTFT p50 ms (llama / ours) | ITL p50 ms (llama / ours) | ITL p99 ms (llama / ours) |`);
    console.log("|---|---|---|---|---|---|---|---|---|---|");
    // Latencies need every id timed by its own event; where a side's were not (see below), n/a.
    const lat = (runs, x, k) => (x[k] === null ? "n/a" : f(x[k]));
    for (const r of results) {
      const l = r.llama_server, g = r.gemma_local;
      const both = (k) => `${lat(r.runs.llama, l, k)} / ${lat(r.runs.gemma, g, k)}`;
      console.log(`| ${r.concurrency} | ${l.requests_per_s.toFixed(2)} | ${g.requests_per_s.toFixed(2)} | ` +
        `${(g.requests_per_s / l.requests_per_s).toFixed(2)}x | ${l.tokens_per_s.toFixed(1)} | ` +
        `${g.tokens_per_s.toFixed(1)} | ${(g.tokens_per_s / l.tokens_per_s).toFixed(2)}x | ` +
        `${both("ttft_ms_p50")} | ${both("itl_ms_p50")} | ${both("itl_ms_p99")} |`);
    }
    const count = (side) => results.reduce((s, r) => s + r.runs[side].reduce((t, x) => t + x.unstreamed_tokens, 0), 0);
    const ul = count("llama"), ug = count("gemma");
    if (ul + ug > 0) {
      console.log(`\nGenerated ids without a streamed event of their own (text held back or empty): ` +
        `llama-server ${ul}, gemma-local ${ug}. req/s and tok/s do not depend on them (they count ` +
        `in the server's final total); that server's TTFT and ITL are n/a.` +
        (ug > 0 && !opts.gemmaLogprobs ? ` --gemma-logprobs makes gemma-local list every id per ` +
          `event (at the cost of a log-softmax over the vocabulary per id).` : ""));
    }
  } else {
    console.log(`| C | llama-server tok/s | gemma-local tok/s | ratio | TTFT p50 ms (llama / ours) | ` +
                `ITL p50 ms (llama / ours) | ITL p99 ms (llama / ours) |`);
    console.log("|---|---|---|---|---|---|---|");
    for (const r of results) {
      const l = r.llama_server, g = r.gemma_local;
      console.log(`| ${r.concurrency} | ${l.aggregate_decode_tokens_per_s.toFixed(1)} | ` +
        `${g.aggregate_decode_tokens_per_s.toFixed(1)} | ` +
        `${(g.aggregate_decode_tokens_per_s / l.aggregate_decode_tokens_per_s).toFixed(2)}x | ` +
        `${f(l.ttft_ms_p50)} / ${f(g.ttft_ms_p50)} | ${f(l.itl_ms_p50)} / ${f(g.itl_ms_p50)} | ` +
        `${f(l.itl_ms_p99)} / ${f(g.itl_ms_p99)} |`);
    }
  }
}
