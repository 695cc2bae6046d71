// llama.cpp's tokenizer on many strings with one model load (node-llama-cpp, CPU prebuilt).
//
//   node llama_tokenize.mjs --model FILE.gguf [--special] < in.jsonl > out.jsonl
//
// stdin: one JSON string per line. stdout: one JSON array of token ids per line, in order.
// Nothing is added (no BOS), as llama_tokenize(add_special = false); --special sets
// parse_special = true so that text such as "<start_of_turn>" maps to special tokens.
// Exit code 1 with a message on stderr on any failure.
import path from "node:path";
import { createInterface } from "node:readline";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

const args = process.argv.slice(2);
let modelPath = null;
let special = false;
for (let i = 0; i < args.length; ++i) {
  if (args[i] === "--model") modelPath = args[++i];
  else if (args[i] === "--special") special = true;
  else {
    process.stderr.write(`llama_tokenize: unknown argument ${args[i]}\n`);
    process.exit(1);
  }
}
if (!modelPath) {
  process.stderr.write("llama_tokenize: --model FILE.gguf is required\n");
  process.exit(1);
}

try {
  const llama = await getLlama({
    gpu: false,
    build: "never",
    usePrebuiltBinaries: true,
    skipDownload: true,
    progressLogs: false,
    logLevel: LlamaLogLevel.error,
  });
  const model = await llama.loadModel({
    modelPath: path.resolve(modelPath),
    gpuLayers: 0,
    useMmap: true,
    vocabOnly: true,
  });
  const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
  const out = [];
  let lineNo = 0;
  for await (const line of rl) {
    ++lineNo;
    if (line.length === 0) continue;
    const text = JSON.parse(line);
    if (typeof text !== "string") throw new Error(`line ${lineNo}: expected a JSON string`);
    out.push(JSON.stringify(Array.from(model.tokenize(text, special))));
    if (out.length >= 256) {
      process.stdout.write(out.join("\n") + "\n");
      out.length = 0;
    }
  }
  if (out.length) process.stdout.write(out.join("\n") + "\n");
  await model.dispose();
  await llama.dispose();
} catch (err) {
  process.stderr.write(`llama_tokenize: ${err?.message ?? err}\n`);
  process.exit(1);
}
