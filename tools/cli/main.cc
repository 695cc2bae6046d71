// gemma-local: one CLI binary with subcommands. This file only dispatches; each subcommand lives
// in its own file and talks to the library through its public API.
#include <cstdio>
#include <exception>
#include <vector>

#include "cli/commands.h"

int main(int argc, char** argv) {
  using namespace gemma_local::cli;
  CLI::App app{"gemma-local: local inference engine for Gemma 3 and Gemma 4", "gemma-local"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "gemma-local 0.1.0");
  CommandRunner inspect = RegisterInspect(app);
  CommandRunner dev = RegisterDev(app);
  CommandRunner chat_template = RegisterTemplate(app);
  CommandRunner score = RegisterScore(app);
  CommandRunner run = RegisterRun(app);
  CommandRunner chat = RegisterChat(app);
  CommandRunner tokenize = RegisterTokenize(app);
  CommandRunner detokenize = RegisterDetokenize(app);
  CommandRunner bench = RegisterBench(app);
  CommandRunner quantize = RegisterQuantize(app);
  CommandRunner serve = RegisterServe(app);
  CommandRunner extract = RegisterExtract(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  }
  try {
    if (app.got_subcommand("inspect")) return inspect();
    if (app.got_subcommand("dev")) return dev();
    if (app.got_subcommand("template")) return chat_template();
    if (app.got_subcommand("score")) return score();
    if (app.got_subcommand("run")) return run();
    if (app.got_subcommand("chat")) return chat();
    if (app.got_subcommand("tokenize")) return tokenize();
    if (app.got_subcommand("detokenize")) return detokenize();
    if (app.got_subcommand("bench")) return bench();
    if (app.got_subcommand("quantize")) return quantize();
    if (app.got_subcommand("serve")) return serve();
    if (app.got_subcommand("extract")) return extract();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return kExitError;
  }
  return kExitUsage;
}
