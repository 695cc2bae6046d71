// `gemma-local quantize IN OUT --type T`: rewrites a GGUF checkpoint with quantized weights that
// llama.cpp and gemma-local both load (mixes as llama.cpp names them: q4_k_m, q8_0, ...).
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "cli/commands.h"
#include "gemma_local/quantize.h"

namespace gemma_local::cli {

CommandRunner RegisterQuantize(CLI::App& app) {
  struct Options {
    std::string in, out, type;
    int threads = 0;
    bool force = false;
  };
  auto opts = std::make_shared<Options>();
  std::string names;
  for (const std::string& n : QuantizeTypeNames()) names += (names.empty() ? "" : ", ") + n;
  CLI::App* cmd = app.add_subcommand("quantize", "Write a quantized copy of a GGUF model");
  cmd->add_option("in", opts->in, "input GGUF file (f32/f16/bf16 or already quantized)")->required();
  cmd->add_option("out", opts->out, "output GGUF file")->required();
  cmd->add_option("--type", opts->type, "target: " + names + " (q4_k = q4_k_m)")->required();
  cmd->add_option("--threads", opts->threads, "worker threads (0 = all cores)");
  cmd->add_flag("--force", opts->force, "overwrite OUT if it exists");
  return [opts]() {
    Result<std::string> type = CanonicalQuantizeType(opts->type);
    if (!type.ok()) {
      std::fprintf(stderr, "error: --type: %s\n", type.status().message().c_str());
      return kExitUsage;
    }
    std::error_code ec;
    if (!opts->force && std::filesystem::exists(opts->out, ec)) {
      std::fprintf(stderr, "error: %s exists (use --force to overwrite)\n", opts->out.c_str());
      return kExitUsage;
    }
    const auto start = std::chrono::steady_clock::now();
    Status s = QuantizeGgufFile(opts->in, opts->out, *type, opts->threads);
    if (!s.ok()) {
      std::fprintf(stderr, "error: %s\n", s.ToString().c_str());
      return kExitError;
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr, "wrote %s (%s) in %.1f s\n", opts->out.c_str(), type->c_str(), secs);
    return kExitOk;
  };
}

}  // namespace gemma_local::cli
