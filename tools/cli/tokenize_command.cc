// `gemma-local tokenize` and `gemma-local detokenize`: the tokenizer on stdin/stdout, for scripts
// and for comparing with other implementations.
//
//   tokenize --model PATH [--tokenizer FILE] [--jsonl] [--no-bos] [--no-special]
//     Without --jsonl all of stdin is one text and one JSON array of ids is printed; with --jsonl
//     each stdin line is a JSON string and each stdout line the JSON array of its ids.
//   detokenize --model PATH [--tokenizer FILE] [--jsonl] [--skip-special]
//     Each stdin line is a JSON array of ids and each stdout line the JSON string they decode to
//     (--jsonl is accepted for symmetry; the line format is the same either way).
// Errors go to stderr with exit code 1 and name the input line.
#include <cstdio>
#include <iostream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/commands.h"
#include "gemma_local/tokenizer.h"

namespace gemma_local::cli {
namespace {

using nlohmann::json;

struct TokenizerSource {
  std::string model;
  std::string tokenizer;  // overrides `model` when set
};

void AddSourceOptions(CLI::App* cmd, TokenizerSource& src) {
  cmd->add_option("--model", src.model, "checkpoint directory, tokenizer.json, or GGUF file")
      ->required();
  cmd->add_option("--tokenizer", src.tokenizer,
                  "tokenizer.json or GGUF file to use instead of the model's own");
}

Result<std::shared_ptr<const Tokenizer>> LoadFrom(const TokenizerSource& src) {
  return Tokenizer::Load(src.tokenizer.empty() ? src.model : src.tokenizer);
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "error: %s\n", message.c_str());
  return kExitError;
}

std::string IdsToJson(const std::vector<int32_t>& ids) {
  std::string out = "[";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) out.push_back(',');
    out += std::to_string(ids[i]);
  }
  out.push_back(']');
  return out;
}

void Write(const std::string& s) { std::fwrite(s.data(), 1, s.size(), stdout); }

}  // namespace

CommandRunner RegisterTokenize(CLI::App& app) {
  struct Options {
    TokenizerSource src;
    bool jsonl = false, no_bos = false, no_special = false;
  };
  auto opts = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("tokenize", "Text on stdin -> JSON arrays of token ids");
  AddSourceOptions(cmd, opts->src);
  cmd->add_flag("--jsonl", opts->jsonl, "each stdin line is a JSON string; one array per line");
  cmd->add_flag("--no-bos", opts->no_bos, "never add BOS (default: the model's rule)");
  cmd->add_flag("--no-special", opts->no_special,
                "treat special-token text such as <start_of_turn> as plain text");
  return [opts]() {
    auto tok = LoadFrom(opts->src);
    if (!tok.ok()) return Fail(tok.status().ToString());
    EncodeOptions eo;
    if (opts->no_bos) eo.add_bos = false;
    eo.parse_special = !opts->no_special;
    if (!opts->jsonl) {
      const std::string text((std::istreambuf_iterator<char>(std::cin)),
                             std::istreambuf_iterator<char>());
      auto ids = (*tok)->Encode(text, eo);
      if (!ids.ok()) return Fail("stdin: " + ids.status().ToString());
      Write(IdsToJson(*ids) + "\n");
      return kExitOk;
    }
    std::string line, out;
    for (size_t line_no = 1; std::getline(std::cin, line); ++line_no) {
      const json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded() || !j.is_string()) {
        return Fail("stdin line " + std::to_string(line_no) + ": expected a JSON string");
      }
      auto ids = (*tok)->Encode(j.get_ref<const std::string&>(), eo);
      if (!ids.ok()) {
        return Fail("stdin line " + std::to_string(line_no) + ": " + ids.status().ToString());
      }
      out += IdsToJson(*ids);
      out.push_back('\n');
      if (out.size() > (1u << 16)) {
        Write(out);
        out.clear();
      }
    }
    Write(out);
    return kExitOk;
  };
}

CommandRunner RegisterDetokenize(CLI::App& app) {
  struct Options {
    TokenizerSource src;
    bool jsonl = false, skip_special = false;
  };
  auto opts = std::make_shared<Options>();
  CLI::App* cmd =
      app.add_subcommand("detokenize", "JSON arrays of token ids on stdin -> JSON strings");
  AddSourceOptions(cmd, opts->src);
  cmd->add_flag("--jsonl", opts->jsonl, "one JSON array per stdin line (the only format)");
  cmd->add_flag("--skip-special", opts->skip_special, "leave special tokens out of the text");
  return [opts]() {
    auto tok = LoadFrom(opts->src);
    if (!tok.ok()) return Fail(tok.status().ToString());
    std::string line, out;
    for (size_t line_no = 1; std::getline(std::cin, line); ++line_no) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      const json j = json::parse(line, nullptr, false);
      std::vector<int32_t> ids;
      bool ok = j.is_array();
      for (size_t i = 0; ok && i < j.size(); ++i) {
        ok = j[i].is_number_integer() && j[i].get<int64_t>() >= INT32_MIN &&
             j[i].get<int64_t>() <= INT32_MAX;
        if (ok) ids.push_back(static_cast<int32_t>(j[i].get<int64_t>()));
      }
      if (!ok) {
        return Fail("stdin line " + std::to_string(line_no) + ": expected a JSON array of ids");
      }
      auto text = (*tok)->Decode(ids, DecodeOptions{opts->skip_special});
      if (!text.ok()) {
        return Fail("stdin line " + std::to_string(line_no) + ": " + text.status().ToString());
      }
      out += json(*text).dump(-1, ' ', false, json::error_handler_t::replace);
      out.push_back('\n');
      if (out.size() > (1u << 16)) {
        Write(out);
        out.clear();
      }
    }
    Write(out);
    return kExitOk;
  };
}

}  // namespace gemma_local::cli
