// Subcommand registration for the gemma-local CLI. Each Register* adds one subcommand to `app`
// and returns a function that runs it (returning the process exit code) when it was chosen.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

namespace gemma_local::cli {

using CommandRunner = std::function<int()>;

CommandRunner RegisterInspect(CLI::App& app);
CommandRunner RegisterDev(CLI::App& app);
CommandRunner RegisterTemplate(CLI::App& app);
CommandRunner RegisterScore(CLI::App& app);
CommandRunner RegisterRun(CLI::App& app);
CommandRunner RegisterChat(CLI::App& app);
CommandRunner RegisterTokenize(CLI::App& app);
CommandRunner RegisterDetokenize(CLI::App& app);
CommandRunner RegisterQuantize(CLI::App& app);
CommandRunner RegisterBench(CLI::App& app);
CommandRunner RegisterServe(CLI::App& app);
CommandRunner RegisterExtract(CLI::App& app);

// Exit codes shared by all subcommands.
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;  // bad input file, failed operation
inline constexpr int kExitUsage = 2;  // bad flags

}  // namespace gemma_local::cli
