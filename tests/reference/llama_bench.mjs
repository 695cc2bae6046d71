#!/usr/bin/env node
// llama.cpp side of bench/compare_llamacpp: the measurement `gemma-local bench` makes, done with
// llama.cpp (CPU prebuilt binary of node-llama-cpp 3.21.1) on the same GGUF, and printed as one
// JSON object with the same key names.
//
// Same prompt: BOS (2) then prompt-tokens - 1 ids from the LCG that gemma-local's bench uses
// (tools/cli/bench_command.cc, BenchPromptIds): x <- 1664525 x + 1013904223 (mod 2^32), x0 = seed,
// id = 256 + (x >> 8) % (n_vocab - 256). `prompt_checksum` (FNV-1a over the ids) lets a caller
// check that both sides evaluated the same ids. --tokens overrides the generator.
//
// Timing, per repetition, with wall clocks around the eval calls (medians over repetitions):
//   prefill_ms   one controlledEvaluate of the whole prompt (batch size = prompt tokens) that also
//                samples the first id greedily; prefill_tokens_per_s = P / prefill_ms.
//                (gemma-local's prefill excludes that one argmax; it is well under 1% of a prefill.)
//   ttft_ms      the same call: prompt evaluation plus the first id.
//   decode       G-1 further single-token evaluations, each sampling greedily (EOS ignored);
//                decode_tokens_per_s = (G-1) / (time from the first id to the last).
// The KV cache is cleared between repetitions; one short warm-up run comes first.
import {spawnSync} from "node:child_process";
import path from "node:path";
import {fileURLToPath} from "node:url";
import {loadCpuModel} from "./llama_cpu.mjs";

const USAGE = `usage: node llama_bench.mjs --model FILE.gguf [--prompt-tokens 512] [--gen-tokens 128]
       [--threads 1] [--repetitions 3] [--seed 1] [--tokens 2,10,11] [--kv-type f16|f32]
       [--flash-attn] [--verbose]`;

const kBosId = 2;
const kFirstPromptId = 256;

class UsageError extends Error {}

function parseArgs(argv) {
    const opts = {promptTokens: 512, genTokens: 128, threads: 1, repetitions: 3, seed: 1, kvType: "f16",
        flashAttn: false, verbose: false};
    const intArg = (name, v, min) => {
        if (v == null || !/^\d+$/.test(v) || Number(v) < min || !Number.isSafeInteger(Number(v)))
            throw new UsageError(`${name} expects an integer >= ${min}, got ${JSON.stringify(v)}`);
        return Number(v);
    };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        const next = () => {
            if (i + 1 >= argv.length) throw new UsageError(`${a} needs a value`);
            return argv[++i];
        };
        switch (a) {
            case "--model": opts.model = next(); break;
            case "--prompt-tokens": opts.promptTokens = intArg(a, next(), 1); break;
            case "--gen-tokens": opts.genTokens = intArg(a, next(), 2); break;
            case "--threads": opts.threads = intArg(a, next(), 1); break;
            case "--repetitions": opts.repetitions = intArg(a, next(), 1); break;
            case "--seed": {
                opts.seed = intArg(a, next(), 0);
                if (opts.seed > 0xffffffff) throw new UsageError("--seed must fit in 32 bits");
                break;
            }
            case "--tokens": opts.tokens = next().split(",").map((s) => intArg(a, s.trim(), 0)); break;
            case "--kv-type": {
                opts.kvType = next().toLowerCase();
                if (opts.kvType !== "f32" && opts.kvType !== "f16") throw new UsageError("--kv-type must be f32 or f16");
                break;
            }
            case "--flash-attn": opts.flashAttn = true; break;
            case "--verbose": opts.verbose = true; break;
            case "-h": case "--help": process.stdout.write(USAGE + "\n"); process.exit(0); break;
            default: throw new UsageError(`unknown argument ${JSON.stringify(a)}`);
        }
    }
    if (opts.model == null) throw new UsageError("--model is required");
    if (opts.tokens != null) {
        if (opts.tokens.length === 0) throw new UsageError("--tokens is empty");
        opts.promptTokens = opts.tokens.length;
    }
    return opts;
}

// Contract shared with gemma-local's BenchPromptIds: change both or neither.
export function benchPromptIds(n, nVocab, seed) {
    const ids = [kBosId];
    const range = nVocab - kFirstPromptId;
    let x = seed >>> 0;
    for (let i = 1; i < n; i++) {
        x = (Math.imul(1664525, x) + 1013904223) >>> 0;
        ids.push(kFirstPromptId + ((x >>> 8) % range));
    }
    return ids;
}

export function promptChecksum(ids) {
    let h = 2166136261;
    for (const id of ids) h = Math.imul((h ^ id) >>> 0, 16777619) >>> 0;
    return h;
}

const median = (values) => {
    const v = [...values].sort((a, b) => a - b);
    const n = v.length;
    return n % 2 === 1 ? v[(n - 1) / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
};

// One timed run: prompt in one batch with a greedy first id, then gen - 1 single-token steps.
async function timedRun(sequence, prompt, gen) {
    await sequence.clearHistory();
    const greedy = {token: true};
    const input = prompt.map((t, i) => (i === prompt.length - 1 ? [t, {generateNext: greedy}] : t));
    const start = performance.now();
    const results = await sequence.controlledEvaluate(input);
    const first = performance.now();
    let next = results[prompt.length - 1]?.next?.token;
    for (let produced = 1; produced < gen; produced++) {
        if (next == null) throw new Error("greedy sampling produced no token");
        const [r] = await sequence.controlledEvaluate([[next, {generateNext: greedy}]]);
        next = r?.next?.token;
    }
    if (next == null) throw new Error("greedy sampling produced no token");
    const last = performance.now();
    if (sequence.nextTokenIndex !== prompt.length + gen - 1)
        throw new Error(`unexpected context state: ${sequence.nextTokenIndex} tokens (context shift?)`);
    return {prefill_ms: first - start, ttft_ms: first - start, decode_ms: last - first};
}

async function main() {
    const opts = parseArgs(process.argv.slice(2));
    const {llama, model} = await loadCpuModel(opts);
    const metaTokens = model.fileInfo.metadata?.tokenizer?.ggml?.tokens;
    if (!Array.isArray(metaTokens)) throw new Error("the GGUF has no tokenizer.ggml.tokens (vocabulary size unknown)");
    const nVocab = metaTokens.length;
    if (opts.tokens == null && nVocab <= kFirstPromptId) throw new Error(`vocabulary too small (${nVocab})`);
    const prompt = opts.tokens ?? benchPromptIds(opts.promptTokens, nVocab, opts.seed);
    const bad = prompt.find((t) => t >= nVocab);
    if (bad != null) throw new Error(`token id ${bad} out of range (n_vocab = ${nVocab})`);

    const needed = prompt.length + opts.genTokens + 2; // node-llama-cpp keeps one cell free
    const kvType = opts.kvType === "f32" ? "F32" : "F16";
    const context = await model.createContext({
        contextSize: needed,
        batchSize: prompt.length, // the whole prompt in one batch, as gemma-local's bench does
        sequences: 1,
        threads: {ideal: opts.threads, min: opts.threads},
        flashAttention: opts.flashAttn,
        experimentalKvCacheKeyType: kvType,
        experimentalKvCacheValueType: kvType
    });
    if (context.contextSize < needed) throw new Error(`context too small: ${context.contextSize} < ${needed}`);
    const sequence = context.getSequence();

    await timedRun(sequence, prompt.slice(0, Math.min(prompt.length, 16)), 2); // warm-up
    const runs = [];
    for (let rep = 0; rep < opts.repetitions; rep++) {
        const t = await timedRun(sequence, prompt, opts.genTokens);
        t.prefill_tokens_per_s = prompt.length * 1000 / Math.max(t.prefill_ms, 1e-6);
        t.decode_tokens_per_s = (opts.genTokens - 1) * 1000 / Math.max(t.decode_ms, 1e-6);
        runs.push(t);
    }
    const med = (key) => median(runs.map((r) => r[key]));
    const out = {
        engine: "llama.cpp (node-llama-cpp 3.21.1, CPU)",
        model: opts.model,
        threads: opts.threads,
        prompt_tokens: prompt.length,
        gen_tokens: opts.genTokens,
        repetitions: opts.repetitions,
        seed: opts.seed,
        prompt_checksum: promptChecksum(prompt),
        prefill_tokens_per_s: med("prefill_tokens_per_s"),
        decode_tokens_per_s: med("decode_tokens_per_s"),
        ttft_ms: med("ttft_ms"),
        prefill_ms: med("prefill_ms"),
        decode_ms: med("decode_ms"),
        kv_cache_type: kvType,
        flash_attention: opts.flashAttn,
        runs
    };
    process.stdout.write(JSON.stringify(out) + "\n");

    await context.dispose();
    await model.dispose();
    await llama.dispose();
}

// llama.cpp reports some malformed files with GGML_ASSERT/abort(), which kills the process; the
// work runs in a child process so every failure maps to exit code 1 with a message on stderr
// (2 for bad arguments, checked here before any model is loaded).
function runSupervised() {
    try {
        parseArgs(process.argv.slice(2));
    } catch (err) {
        process.stderr.write(`llama_bench: ${err.message}\n${USAGE}\n`);
        process.exitCode = 2;
        return;
    }
    const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
        env: {...process.env, LLAMA_BENCH_CHILD: "1"},
        stdio: ["ignore", "pipe", "inherit"],
        maxBuffer: 1 << 26
    });
    if (child.error != null) {
        process.stderr.write(`llama_bench: failed to run the worker process: ${child.error.message}\n`);
        process.exitCode = 1;
    } else if (child.status === 0) {
        process.stdout.write(child.stdout);
        process.exitCode = 0;
    } else {
        if (child.signal != null) process.stderr.write(`llama_bench: llama.cpp aborted (${child.signal})\n`);
        process.exitCode = 1;
    }
}

const isMain = process.argv[1] != null && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain && process.env.LLAMA_BENCH_CHILD !== "1") runSupervised();
else if (isMain) main().catch((err) => {
    process.stderr.write(`llama_bench: ${err?.message ?? String(err)}\n`);
    process.exit(1);
});
