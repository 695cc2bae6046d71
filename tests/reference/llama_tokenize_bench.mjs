// Timing variant of llama_tokenize.mjs: llama.cpp's tokenizer (node-llama-cpp, CPU prebuilt) on a
// large corpus, for bench/tokenizer_vs_llamacpp.
//
//   node llama_tokenize_bench.mjs --model FILE.gguf --corpus FILE.jsonl [--special] [--repeat N]
//
// The GGUF is loaded vocab-only (no weights). The corpus is one JSON string per line (documents
// of ~256 KB, as tokenizer_bench --write_corpus writes them); each document is one tokenize()
// call, so the per-call binding cost (a JS -> UTF-8 copy and a typed array of ids) is small next to
// the tokenization itself. The native call is timed directly (the public LlamaModel.tokenize wraps
// it in Array.from, which would add JS work per token). Nothing is added (no BOS); --special sets
// parse_special = true, as tokenizer_bench does.
//
// Prints one JSON object: {"load_ms", "bytes", "tokens", "runs": [{"cpu_s", "wall_s"}...],
// "best_cpu_mb_per_s", "best_wall_mb_per_s"}; MB = 10^6 bytes of UTF-8 input. CPU time is the
// process's user+system time (the tokenizer is single-threaded; it is the steadier measure on a
// shared machine). Exit code 1 with a message on stderr on any failure.
import fs from "node:fs";
import path from "node:path";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

const args = process.argv.slice(2);
let modelPath = null;
let corpusPath = null;
let special = false;
let repeat = 3;
for (let i = 0; i < args.length; ++i) {
  if (args[i] === "--model") modelPath = args[++i];
  else if (args[i] === "--corpus") corpusPath = args[++i];
  else if (args[i] === "--special") special = true;
  else if (args[i] === "--repeat") repeat = Math.max(1, Number.parseInt(args[++i], 10));
  else {
    process.stderr.write(`llama_tokenize_bench: unknown argument ${args[i]}\n`);
    process.exit(1);
  }
}
if (!modelPath || !corpusPath) {
  process.stderr.write("llama_tokenize_bench: --model FILE.gguf and --corpus FILE.jsonl are required\n");
  process.exit(1);
}

function cpuSeconds() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

try {
  const docs = fs
    .readFileSync(corpusPath, "utf8")
    .split("\n")
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line));
  const bytes = docs.reduce((n, d) => n + Buffer.byteLength(d, "utf8"), 0);

  const llama = await getLlama({
    gpu: false,
    build: "never",
    usePrebuiltBinaries: true,
    skipDownload: true,
    progressLogs: false,
    logLevel: LlamaLogLevel.error,
  });
  const t0 = process.hrtime.bigint();
  const model = await llama.loadModel({
    modelPath: path.resolve(modelPath),
    gpuLayers: 0,
    useMmap: true,
    vocabOnly: true,
  });
  const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;

  // The addon's tokenize(text, special) returns a Uint32Array; fall back to the public method.
  const native = model._model && typeof model._model.tokenize === "function" ? model._model : null;
  const tokenize = native
    ? (text) => native.tokenize(text, special)
    : (text) => model.tokenize(text, special);
  tokenize(docs[0].slice(0, 1000));  // warm-up

  const runs = [];
  let tokens = 0;
  for (let r = 0; r < repeat; ++r) {
    tokens = 0;
    const c0 = cpuSeconds();
    const w0 = process.hrtime.bigint();
    for (const d of docs) tokens += tokenize(d).length;
    runs.push({
      cpu_s: cpuSeconds() - c0,
      wall_s: Number(process.hrtime.bigint() - w0) / 1e9,
    });
  }
  const best = (key) => bytes / 1e6 / Math.min(...runs.map((x) => x[key]));
  process.stdout.write(
    JSON.stringify({
      load_ms: loadMs,
      native_binding: native !== null,
      documents: docs.length,
      bytes,
      tokens,
      runs,
      best_cpu_mb_per_s: best("cpu_s"),
      best_wall_mb_per_s: best("wall_s"),
    }) + "\n",
  );
  await model.dispose();
  await llama.dispose();
} catch (err) {
  process.stderr.write(`llama_tokenize_bench: ${err?.message ?? err}\n`);
  process.exit(1);
}
