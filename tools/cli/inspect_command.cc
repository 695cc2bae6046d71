// `gemma-local inspect PATH [--json]`: what a checkpoint is and what it will cost, read from
// metadata and tensor headers only.
#include <cstdio>
#include <string>

#include "cli/commands.h"
#include "gemma_local/model_info.h"

namespace gemma_local::cli {

CommandRunner RegisterInspect(CLI::App& app) {
  struct Options {
    std::string path;
    bool json = false;
  };
  auto opts = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "inspect", "Describe a GGUF file or Hugging Face checkpoint directory: architecture, geometry, "
                 "parameters, dtypes, tokenizer/template presence and memory needs");
  cmd->add_option("path", opts->path, "GGUF file, or HF checkpoint directory (config.json + safetensors)")
      ->required();
  cmd->add_flag("--json", opts->json, "print one JSON object instead of text");
  return [opts]() {
    Result<ModelInfo> info = InspectModel(opts->path);
    if (!info.ok()) {
      std::fprintf(stderr, "error: %s\n", info.status().ToString().c_str());
      return kExitError;
    }
    const std::string out = opts->json ? info->ToJson() + "\n" : info->ToText();
    std::fwrite(out.data(), 1, out.size(), stdout);
    return kExitOk;
  };
}

}  // namespace gemma_local::cli
