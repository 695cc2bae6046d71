// The official JSON-Schema-Test-Suite (draft 2020-12) against the constrained decoder: for every
// schema the compiler accepts, no instance the suite marks invalid can come out as a valid value,
// i.e. the grammar rejects its compact serialization or the validator that judges every finished
// value flags it. Prints how many invalid instances the grammar alone rejects and how many valid
// ones it accepts (it writes one canonical form, so a valid instance written otherwise, e.g. with
// properties in another order, is rejected).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "common/test_support.h"
#include "constrain/constraint_compile.h"
#include "constrain/matcher.h"
#include "constrain/vocab_index.h"

namespace gemma_local::constrain {
namespace {

TEST(SuiteMatcher, NoInvalidSuiteInstanceComesOutValid) {
  std::optional<std::string> shared = testing::SharedDir();
  const std::string dir =
      shared ? *shared + "/testdata/json-schema-test-suite/tests/draft2020-12" : "";
  GL_REQUIRE_REFERENCE(shared && std::filesystem::is_directory(dir),
                       "../shared/testdata/json-schema-test-suite is not here");
  // One token per byte value, and a stop token: AcceptBytes walks the grammar byte by byte.
  std::vector<std::string> bytes;
  for (int b = 0; b < 256; ++b) bytes.push_back(std::string(1, static_cast<char>(b)));
  bytes.push_back("<stop>");
  std::vector<bool> excluded(bytes.size(), false);
  excluded.back() = true;
  const std::shared_ptr<const VocabIndex> vocab = VocabIndex::FromTokens(bytes, excluded);
  const int32_t stop = 256;

  int groups = 0, compiled = 0, invalid = 0, invalid_grammar_rejects = 0, valid = 0,
      valid_accepted = 0;
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".json") files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());
  for (const std::string& path : files) {
    std::ifstream in(path);
    const nlohmann::ordered_json suite = nlohmann::ordered_json::parse(in);
    const std::string file = std::filesystem::path(path).filename().string();
    for (const auto& group : suite) {
      ++groups;
      Result<std::shared_ptr<const CompiledConstraint>> c =
          CompileConstraint(Constraint::JsonSchema(group["schema"]));
      if (!c.ok()) continue;  // refused or unsatisfiable: nothing is generated at all
      ++compiled;
      for (const auto& t : group["tests"]) {
        const std::string text = t["data"].dump();
        Matcher m((*c)->grammar, vocab, {stop});
        const bool grammar_accepts = m.AcceptBytes(text).ok() && m.Complete();
        const bool comes_out_valid =
            grammar_accepts && JudgeOutput(**c, /*complete=*/true, text).valid;
        if (t["valid"].get<bool>()) {
          ++valid;
          valid_accepted += grammar_accepts ? 1 : 0;
        } else {
          ++invalid;
          invalid_grammar_rejects += grammar_accepts ? 0 : 1;
          EXPECT_FALSE(comes_out_valid)
              << file << ": " << group["description"].get<std::string>() << " / "
              << t["description"].get<std::string>() << ": " << text;
        }
      }
    }
  }
  std::printf(
      "suite vs decoder: %d of %d schemas compile; %d invalid instances, %d rejected by the "
      "grammar, the rest by the validator; %d of %d valid instances accepted as written\n",
      compiled, groups, invalid, invalid_grammar_rejects, valid_accepted, valid);
  EXPECT_GT(compiled, 200);
}

}  // namespace
}  // namespace gemma_local::constrain
