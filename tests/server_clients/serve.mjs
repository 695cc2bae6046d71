// Runs `gemma-local serve` as a child process for the tests: a random-weight tiny model in a temp
// dir, port 0, and a stop that is always SIGKILL-backed so a failing test never leaves it running.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// Writes DIR/model.gguf (Gemma 3 "tiny" preset, synthetic tokenizer, fixed seed).
export function makeTinyModel() {
  const dir = mkdtempSync(join(tmpdir(), 'gemma-local-clients-'));
  execFileSync(binary(), ['dev', 'make-model', '--out', dir, '--preset', 'tiny', '--layout', 'gguf'],
               { stdio: ['ignore', 'ignore', 'inherit'], timeout: 30_000 });
  return { dir, model: join(dir, 'model.gguf'), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

// The binary under test: --bin PATH or $GEMMA_LOCAL_BIN.
export function binary() {
  const i = process.argv.indexOf('--bin');
  const bin = i > 0 ? process.argv[i + 1] : process.env.GEMMA_LOCAL_BIN;
  if (!bin) throw new Error('give the gemma-local binary with --bin PATH or GEMMA_LOCAL_BIN');
  return bin;
}

// Starts serve and resolves once it printed `ready: ID`: { url, port, modelId, stop(), exitStatus(),
// stderr() }.
// stop() sends SIGTERM and resolves with the exit code (SIGKILL after 10 s: then it rejects).
export async function startServe(model, extraArgs = [], { readyTimeoutMs = 30_000 } = {}) {
  const child = spawn(binary(), ['serve', '--model', model, '--port', '0', '--threads', '2', ...extraArgs],
                      { stdio: ['ignore', 'pipe', 'pipe'] });
  const killOnExit = () => child.kill('SIGKILL');
  process.on('exit', killOnExit);  // belt and braces: never outlive the test process
  let stderr = '';
  child.stderr.on('data', (d) => { stderr = (stderr + d).slice(-4000); });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const ready = new Promise((resolve, reject) => {
    let out = '';
    let port = 0;
    child.stdout.on('data', (d) => {
      out += d;
      for (;;) {
        const nl = out.indexOf('\n');
        if (nl < 0) break;
        const line = out.slice(0, nl);
        out = out.slice(nl + 1);
        const m = line.match(/^listening on http:\/\/127\.0\.0\.1:(\d+)/);
        if (m) port = Number(m[1]);
        const r = line.match(/^ready: (.+)$/);
        if (r && port) resolve({ port, modelId: r[1] });
      }
    });
    exited.then(({ code, signal }) =>
      reject(new Error(`serve exited (${code ?? signal}) before ready:\n${stderr}`)));
    setTimeout(() => reject(new Error(`serve not ready in ${readyTimeoutMs} ms:\n${stderr}`)),
               readyTimeoutMs).unref();
  });
  let info;
  try {
    info = await ready;
  } catch (e) {
    child.kill('SIGKILL');
    process.off('exit', killOnExit);
    throw e;
  }
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return (await exited).code;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    const { code, signal } = await exited;
    clearTimeout(timer);
    process.off('exit', killOnExit);
    if (signal) throw new Error(`serve did not stop on SIGTERM (${signal}):\n${stderr}`);
    return code;
  };
  // null while serve runs, else how it ended: { code, signal }.
  const exitStatus = () => (child.exitCode === null && child.signalCode === null
    ? null : { code: child.exitCode, signal: child.signalCode });
  return { ...info, url: `http://127.0.0.1:${info.port}`, stop, exitStatus, stderr: () => stderr };
}

// A file with one API key a line, for `serve --api-key-file`.
export function writeKeyFile(dir, keys) {
  const path = join(dir, 'keys.txt');
  writeFileSync(path, keys.join('\n') + '\n');
  return path;
}
