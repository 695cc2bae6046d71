#!/usr/bin/env node
// External reference harness: evaluates a GGUF model with llama.cpp (CPU prebuilt binary of
// node-llama-cpp 3.21.1) and prints one JSON object with per-position top-K log-probabilities.
// See README.md for the CLI contract.
import {spawnSync} from "node:child_process";
import os from "node:os";
import {fileURLToPath} from "node:url";
import {loadCpuModel} from "./llama_cpu.mjs";

const USAGE = `usage: node llama_ref.mjs --model FILE.gguf (--tokens 2,10,11 | --text "raw text")
       [--top-k K=10] [--generate N=0] [--threads T] [--info]
       [--special] [--bos] [--kv-type f32|f16] [--flash-attn] [--verbose]`;

class UsageError extends Error {}

function parseArgs(argv) {
    const opts = {topK: 10, generate: 0, threads: 0, info: false, special: false, bos: false,
        kvType: "f32", flashAttn: false, verbose: false};
    const intArg = (name, v, min) => {
        if (v == null || !/^\d+$/.test(v) || Number(v) < min)
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
            case "--tokens": {
                const v = next().trim();
                opts.tokens = v === "" ? [] : v.split(",").map((s) => intArg("--tokens", s.trim(), 0));
                break;
            }
            case "--text": opts.text = next(); break;
            case "--top-k": opts.topK = intArg(a, next(), 1); break;
            case "--generate": opts.generate = intArg(a, next(), 0); break;
            case "--threads": opts.threads = intArg(a, next(), 1); break;
            case "--info": opts.info = true; break;
            case "--special": opts.special = true; break;
            case "--bos": opts.bos = true; break;
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
    if ((opts.tokens == null) === (opts.text == null)) throw new UsageError("exactly one of --tokens / --text is required");
    if (opts.tokens != null && (opts.special || opts.bos)) throw new UsageError("--special/--bos only apply to --text");
    if (opts.threads === 0) opts.threads = Math.max(1, Math.min(4, os.availableParallelism?.() ?? os.cpus().length));
    return opts;
}

// natural-log probability; llama.cpp hands back float32 softmax values, 0 means "below float32 range"
const logProb = (p) => (p > 0 ? Math.log(p) : null);

function topK(probabilities, k) {
    // the Map is already sorted by logit, descending (std::sort in the addon); keep that order
    const out = [];
    for (const [id, p] of probabilities) {
        if (out.length >= k) break;
        out.push([id, logProb(p)]);
    }
    return out;
}

async function main() {
    const opts = parseArgs(process.argv.slice(2));
    const {llama, model} = await loadCpuModel(opts);

    const metaTokens = model.fileInfo.metadata?.tokenizer?.ggml?.tokens;
    const nVocabMeta = Array.isArray(metaTokens) ? metaTokens.length : null;

    let tokens;
    if (opts.text != null) {
        tokens = Array.from(model.tokenize(opts.text, opts.special)); // never adds BOS by itself
        if (opts.bos) {
            if (model.tokens.bos == null) throw new Error("--bos: the model has no BOS token");
            tokens.unshift(model.tokens.bos);
        }
    } else {
        tokens = opts.tokens;
    }
    if (tokens.length === 0) throw new Error("no input tokens");
    if (nVocabMeta != null) {
        const bad = tokens.find((t) => t >= nVocabMeta);
        if (bad != null) throw new Error(`token id ${bad} out of range (n_vocab = ${nVocabMeta})`);
    }

    const needed = tokens.length + opts.generate + 2; // node-llama-cpp keeps one cell free
    const kvType = opts.kvType === "f32" ? "F32" : "F16";
    const context = await model.createContext({
        contextSize: needed,
        batchSize: Math.min(512, needed),
        sequences: 1,
        threads: {ideal: opts.threads, min: opts.threads},
        flashAttention: opts.flashAttn,
        experimentalKvCacheKeyType: kvType,
        experimentalKvCacheValueType: kvType
    });
    if (context.contextSize < needed) throw new Error(`context too small: ${context.contextSize} < ${needed}`);
    const sequence = context.getSequence();

    // every position gets the full-vocabulary softmax of its raw logits (greedy sampler: no
    // temperature/top-k/top-p transform touches the candidates); the last one also samples greedily
    const input = tokens.map((t, i) => [t, {
        generateNext: {probabilities: true, token: i === tokens.length - 1 && opts.generate > 0}
    }]);
    const results = await sequence.controlledEvaluate(input);

    let nVocab = null;
    const positions = results.map((r, i) => {
        const probs = r?.next?.probabilities;
        if (probs == null) throw new Error(`no probabilities for position ${i}`);
        if (nVocab == null) nVocab = probs.size;
        else if (probs.size !== nVocab) throw new Error(`position ${i}: ${probs.size} candidates, expected ${nVocab}`);
        return {top: topK(probs, opts.topK)};
    });

    const generated = [];
    let next = results[results.length - 1]?.next?.token;
    while (generated.length < opts.generate) {
        if (next == null) throw new Error("greedy sampling produced no token");
        generated.push(next);
        if (generated.length === opts.generate) break;
        const [r] = await sequence.controlledEvaluate([[next, {generateNext: {token: true}}]]);
        next = r?.next?.token;
    }
    if (sequence.nextTokenIndex !== tokens.length + Math.max(0, opts.generate - 1))
        throw new Error("unexpected context shift (context too small)");

    const out = {n_vocab: nVocab, tokens, positions, generated};
    if (opts.info) {
        const meta = model.fileInfo.metadata ?? {};
        const arch = meta.general?.architecture;
        const archMeta = (arch != null ? meta[arch] : null) ?? {};
        out.info = {
            architecture: arch ?? null,
            name: meta.general?.name ?? null,
            description: model.typeDescription,          // llama_model_desc()
            n_vocab: nVocab,                              // llama_vocab_n_tokens() (size of the softmax)
            n_vocab_metadata: nVocabMeta,
            n_ctx_train: model.trainContextSize,          // llama_model_n_ctx_train()
            n_embd: model.embeddingVectorSize,            // llama_model_n_embd()
            n_layer: archMeta.block_count ?? null,
            n_head: archMeta.attention?.head_count ?? null,
            n_head_kv: archMeta.attention?.head_count_kv ?? null,
            n_ff: archMeta.feed_forward_length ?? null,
            sliding_window: archMeta.attention?.sliding_window ?? null,
            vocab_type: model.vocabularyType,             // llama_vocab_type()
            bos: model.tokens.bos, eos: model.tokens.eos, eot: model.tokens.eot, nl: model.tokens.nl,
            add_bos: model.tokens.shouldPrependBosToken,  // llama_vocab_get_add_bos()
            model_size_bytes: model.size,
            context_size: context.contextSize,
            threads: opts.threads,
            kv_cache_type: kvType,
            flash_attention: opts.flashAttn,
            tokens_text: tokens.map((t) => model.detokenize([t], true))
        };
    }
    process.stdout.write(JSON.stringify(out) + "\n");

    await context.dispose();
    await model.dispose();
    await llama.dispose();
}

// llama.cpp reports some malformed files with GGML_ASSERT/abort(), which kills the process; run the
// real work in a child process so that every failure maps to exit code 1 with a message on stderr
function runSupervised() {
    const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
        env: {...process.env, LLAMA_REF_CHILD: "1"},
        stdio: ["ignore", "pipe", "inherit"],
        maxBuffer: 1 << 30
    });
    if (child.error != null) {
        process.stderr.write(`llama_ref: failed to run the worker process: ${child.error.message}\n`);
        process.exitCode = 1;
    } else if (child.status === 0) {
        process.stdout.write(child.stdout);
        process.exitCode = 0;
    } else {
        if (child.signal != null)
            process.stderr.write(`llama_ref: llama.cpp aborted (${child.signal}); see the message above\n`);
        process.exitCode = 1;
    }
}

if (process.env.LLAMA_REF_CHILD !== "1") runSupervised();
else main().catch((err) => {
    process.stderr.write(`llama_ref: ${err instanceof UsageError ? err.message + "\n" + USAGE : (err?.message ?? String(err))}\n`);
    process.exit(1);
});
