// Shared by the llama.cpp reference harnesses: node-llama-cpp 3.21.1's prebuilt CPU backend
// (never a GPU, never a source build or download) and a GGUF loaded on it, with llama.cpp's own
// error lines attached to a load failure.
import path from "node:path";
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

// opts: {model, threads, verbose}. Returns {llama, model}.
export async function loadCpuModel(opts) {
    const logs = [];
    const llama = await getLlama({
        gpu: false,               // CPU only
        build: "never",           // never compile llama.cpp from source
        usePrebuiltBinaries: true,
        skipDownload: true,       // never download llama.cpp sources
        progressLogs: false,
        maxThreads: opts.threads,
        logLevel: opts.verbose ? LlamaLogLevel.debug : LlamaLogLevel.warn,
        logger: (level, message) => {
            if (opts.verbose) process.stderr.write(`[llama.cpp ${level}] ${message}${message.endsWith("\n") ? "" : "\n"}`);
            else if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) logs.push(message.trim());
        }
    });
    if (llama.gpu !== false) throw new Error(`expected the CPU backend, got ${llama.gpu}`);
    try {
        const model = await llama.loadModel({modelPath: path.resolve(opts.model), gpuLayers: 0, useMmap: true});
        return {llama, model};
    } catch (err) {
        await new Promise((resolve) => setTimeout(resolve, 100)); // llama.cpp log lines arrive asynchronously
        const detail = logs.length > 0 ? `: ${logs.join(" | ")}` : "";
        throw new Error(`failed to load ${opts.model}: ${err?.message ?? err}${detail}`);
    }
}
