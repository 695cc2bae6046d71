// libFuzzer target: constraints from hostile text. The first byte picks the input kind:
//   even: a JSON Schema (compiled, then a walk of up to 64 tokens chosen by the remaining bytes
//         over a vocabulary of single bytes plus a few JSON pieces);
//   odd:  an ECMA regex constraint (first byte & 3 == 1) or a GBNF grammar (& 3 == 3), walked
//         the same way.
// Every input must give a value or an error, never a crash, and a compiled constraint must never
// dead-end: an empty mask aborts (the matcher's contract is that it cannot happen).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "constrain/constraint_compile.h"
#include "constrain/matcher.h"

namespace {

std::shared_ptr<const gemma_local::constrain::VocabIndex> Vocab() {
  static const auto vocab = [] {
    std::vector<std::string> bytes{""};  // 0: stop
    for (int b = 0; b < 256; ++b) bytes.push_back(std::string(1, static_cast<char>(b)));
    for (const char* piece : {"{\"", "\":", "\",", "\"}", "true", "null", "12", "\\u00", "é"}) {
      bytes.push_back(piece);
    }
    std::vector<bool> excluded(bytes.size(), false);
    excluded[0] = true;
    return gemma_local::constrain::VocabIndex::FromTokens(bytes, excluded);
  }();
  return vocab;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gemma_local;
  if (size < 2) return 0;
  const bool regex = (data[0] & 1) != 0;
  // The text runs to the first NUL; what follows drives the walk.
  std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  std::string choices;
  if (const size_t nul = text.find('\0'); nul != std::string::npos) {
    choices = text.substr(nul + 1);
    text.resize(nul);
  }
  Constraint c;
  if (regex && (data[0] & 2) != 0) {
    c = Constraint::Gbnf(text);
  } else if (regex) {
    c = Constraint::Regex(text);
  } else {
    nlohmann::ordered_json schema =
        nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (schema.is_discarded()) return 0;
    c = Constraint::JsonSchema(std::move(schema), (data[0] & 2) != 0);
  }
  Result<std::shared_ptr<const constrain::CompiledConstraint>> compiled =
      constrain::CompileConstraint(c);
  if (!compiled.ok()) return 0;
  constrain::Matcher m((*compiled)->grammar, Vocab(), {0});
  constrain::TokenMask mask;
  std::string out;
  for (size_t step = 0; step < 64 && !m.finished(); ++step) {
    Status s = m.FillMask(&mask);
    if (!s.ok()) abort();  // a dead end
    std::vector<int32_t> ids = mask.Ids();
    const uint8_t pick = step < choices.size() ? static_cast<uint8_t>(choices[step]) : 0;
    const int32_t id = ids[pick % ids.size()];
    if (!m.Accept(id).ok()) abort();  // the mask allowed it
    if (id != 0) out += Vocab()->TokenBytes(id);
  }
  if (m.finished()) {
    const ConstraintOutcome outcome = constrain::JudgeOutput(**compiled, true, out);
    if ((*compiled)->json && !nlohmann::json::accept(out)) abort();
    (void)outcome;
  }
  return 0;
}
