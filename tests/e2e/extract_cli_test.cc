// `gemma-local extract` through the real binary on a generated model: one line per document in
// input order, rules evaluated and retried, output independent of --concurrency, resume after a
// kill -9 equal to an uninterrupted run, and refusals (schema, rules, inputs) before any document.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/test_support.h"

namespace gemma_local {
namespace {

using testing::RunCommand;
using testing::TempDir;

std::string Bin() { return testing::BinaryPath(); }

constexpr const char* kSchema = R"({
  "type": "object",
  "properties": {
    "vendor": {"type": "string", "maxLength": 12},
    "kind": {"enum": ["invoice", "receipt"]},
    "subtotal": {"type": "number", "minimum": 0, "maximum": 1000},
    "tax": {"type": "number", "minimum": 0, "maximum": 100},
    "total": {"type": "number"}
  },
  "required": ["vendor", "kind", "subtotal", "tax", "total"],
  "additionalProperties": false
})";

// total_adds_up fails on nearly every random-weight value (so it retries); the others hold.
constexpr const char* kRules = R"yaml(version: 1
rules:
  - name: total_adds_up
    expr: 'approx(.subtotal + .tax; .total; 0.01)'
    message: total must equal subtotal + tax
    detail: '"subtotal + tax = \(.subtotal + .tax), total is \(.total)"'
  - name: kind_known
    expr: '.kind == "invoice" or .kind == "receipt"'
  - name: vendor_named
    expr: '.vendor | length >= 0'
    severity: warning
)yaml";

std::vector<nlohmann::ordered_json> ReadLines(const std::string& path) {
  std::vector<nlohmann::ordered_json> lines;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) lines.push_back(nlohmann::ordered_json::parse(line));
  return lines;
}

class ExtractCli : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::CommandResult made =
        RunCommand(Bin() + " dev make-model --out " + dir_.path() + " --preset tiny");
    ASSERT_EQ(made.exit_code, 0) << made.err;
    testing::WriteFile(dir_.File("schema.json"), kSchema);
    testing::WriteFile(dir_.File("rules.yaml"), kRules);
    std::filesystem::create_directories(dir_.File("docs/2026"));
    for (int i = 0; i < 10; ++i) {
      const double subtotal = 10.0 * (i + 1);
      const std::string name =
          (i < 5 ? "docs/" : "docs/2026/") + std::string("invoice_") + std::to_string(i) + ".txt";
      testing::WriteFile(
          dir_.File(name),
          "ACME Corp invoice " + std::to_string(i) + "\nSubtotal: " + std::to_string(subtotal) +
              "\nTax: 1.00\nTotal: " + std::to_string(subtotal + (i % 3 == 0 ? 5 : 1)));
    }
  }
  std::string Extract(const std::string& out, const std::string& extra = "") const {
    return Bin() + " extract --reproducible --max-tokens 96 --threads 2 --model " +
           dir_.File("hf") + " --schema " + dir_.File("schema.json") + " --rules " +
           dir_.File("rules.yaml") + " --input " + dir_.File("docs") + " --output " + out + " " +
           extra;
  }
  TempDir dir_;
};

TEST_F(ExtractCli, OneLinePerDocumentRulesRetriedAndIndependentOfConcurrency) {
  testing::CommandResult r = RunCommand(Extract(dir_.File("a.jsonl"), "--concurrency 3"));
  ASSERT_FALSE(r.signaled) << r.err;
  ASSERT_TRUE(r.exit_code == 0 || r.exit_code == 1) << r.err;
  EXPECT_NE(r.err.find("extract: 10/10 documents"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir_.File("a.jsonl.journal")));
  const std::vector<nlohmann::ordered_json> lines = ReadLines(dir_.File("a.jsonl"));
  ASSERT_EQ(lines.size(), 10u);
  std::vector<std::string> ids;
  int failed = 0;
  for (const auto& line : lines) {
    std::vector<std::string> keys;
    for (const auto& [k, v] : line.items()) keys.push_back(k);
    EXPECT_EQ(keys, (std::vector<std::string>{"id", "ok", "data", "errors", "rules", "attempts",
                                              "tokens", "ms", "model_sha256"}));
    ids.push_back(line["id"]);
    EXPECT_EQ(line["ms"], 0) << "--reproducible";
    EXPECT_EQ(line["model_sha256"].get<std::string>().size(), 64u);
    EXPECT_GT(line["tokens"].get<int64_t>(), 0);
    const int attempts = line["attempts"];
    ASSERT_EQ(line["rules"].size(), 3u) << line.dump();
    const bool adds_up = line["rules"][0]["ok"].get<bool>();
    EXPECT_TRUE(line["rules"][1]["ok"].get<bool>()) << "the schema's enum guarantees it";
    EXPECT_EQ(line["rules"][2]["severity"], "warning");
    // Every value parses and has the schema's required keys, whatever the rules said.
    ASSERT_TRUE(line["data"].is_object()) << line.dump();
    for (const char* k : {"vendor", "kind", "subtotal", "tax", "total"}) {
      EXPECT_TRUE(line["data"].contains(k)) << k;
    }
    if (line["ok"]) {
      EXPECT_TRUE(adds_up);
      EXPECT_TRUE(line["errors"].empty());
    } else {
      ++failed;
      EXPECT_EQ(attempts, 3) << "a failed rule retries up to --max-attempts";
      ASSERT_FALSE(line["errors"].empty());
      EXPECT_EQ(line["errors"][0]["kind"], "rule");
      EXPECT_EQ(line["errors"][0]["rule"], "total_adds_up");
      EXPECT_NE(line["errors"][0]["message"].get<std::string>().find("subtotal + tax = "),
                std::string::npos);
    }
  }
  EXPECT_EQ(r.exit_code, failed > 0 ? 1 : 0);
  EXPECT_EQ(ids, (std::vector<std::string>{"2026/invoice_5.txt", "2026/invoice_6.txt",
                                           "2026/invoice_7.txt", "2026/invoice_8.txt",
                                           "2026/invoice_9.txt", "invoice_0.txt", "invoice_1.txt",
                                           "invoice_2.txt", "invoice_3.txt", "invoice_4.txt"}));
  // The same file whatever the concurrency (the engine's batch invariance; greedy).
  testing::CommandResult one = RunCommand(Extract(dir_.File("b.jsonl"), "--concurrency 1"));
  ASSERT_EQ(one.exit_code, r.exit_code) << one.err;
  EXPECT_EQ(testing::ReadFile(dir_.File("a.jsonl")), testing::ReadFile(dir_.File("b.jsonl")));
}

TEST_F(ExtractCli, ResumeAfterKillNineGivesTheUninterruptedFile) {
  testing::CommandResult whole = RunCommand(Extract(dir_.File("whole.jsonl"), "--concurrency 2"));
  ASSERT_TRUE(whole.exit_code == 0 || whole.exit_code == 1) << whole.err;
  const std::string out = dir_.File("cut.jsonl");
  // Kill -9 once 3 documents are in the journal.
  testing::CommandResult killed =
      RunCommand("(" + Extract(out, "--concurrency 2") +
                 ") 2>/dev/null & pid=$!; n=0; for i in $(seq 1 3000);"
                 " do n=$(cat " +
                 out +
                 ".journal 2>/dev/null | wc -l); [ \"$n\" -ge 3 ] && break; sleep 0.01;"
                 " done; kill -9 $pid; wait $pid; echo $n");
  ASSERT_GE(std::stoi(killed.out), 3) << killed.out << killed.err;
  ASSERT_FALSE(std::filesystem::exists(out)) << "killed before the end";
  // A torn line (a write cut short) is dropped on resume.
  std::ofstream(out + ".journal", std::ios::app) << R"({"id":"invoice_9.txt","ok":tr)";
  testing::CommandResult resumed = RunCommand(Extract(out, "--concurrency 2"));
  ASSERT_EQ(resumed.exit_code, whole.exit_code) << resumed.err;
  EXPECT_EQ(testing::ReadFile(out), testing::ReadFile(dir_.File("whole.jsonl")));
  // Rerunning a finished file redoes only the failed documents and leaves it byte-identical.
  testing::CommandResult again = RunCommand(Extract(out, "--concurrency 2"));
  EXPECT_EQ(again.exit_code, whole.exit_code);
  EXPECT_EQ(testing::ReadFile(out), testing::ReadFile(dir_.File("whole.jsonl")));
}

TEST_F(ExtractCli, JsonlInputAndPerDocumentInputErrors) {
  testing::WriteFile(dir_.File("in.jsonl"),
                     "{\"id\": 7, \"text\": \"Subtotal 3, tax 0, total 3\"}\n\n"
                     "{\"id\": \"b\", \"text\": \"nothing here\"}\n");
  testing::WriteFile(dir_.File("latin1.txt"), "caf\xe9");
  testing::CommandResult r =
      RunCommand(Bin() + " extract --reproducible --max-tokens 96 --max-attempts 1 --model " +
                 dir_.File("hf") + " --schema " + dir_.File("schema.json") + " --input " +
                 dir_.File("in.jsonl") + " --input " + dir_.File("latin1.txt") + " --output " +
                 dir_.File("o.jsonl"));
  ASSERT_TRUE(r.exit_code == 1) << r.err;  // the Latin-1 file fails
  const std::vector<nlohmann::ordered_json> lines = ReadLines(dir_.File("o.jsonl"));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0]["id"], 7);
  EXPECT_EQ(lines[1]["id"], "b");
  EXPECT_TRUE(lines[0]["rules"].empty()) << "no --rules";
  EXPECT_EQ(lines[0]["ok"], true) << lines[0].dump();
  EXPECT_EQ(lines[2]["ok"], false);
  EXPECT_EQ(lines[2]["attempts"], 0);
  EXPECT_EQ(lines[2]["errors"][0]["kind"], "input");
  EXPECT_NE(lines[2]["errors"][0]["message"].get<std::string>().find("not UTF-8"),
            std::string::npos);
}

TEST_F(ExtractCli, RefusalsExitTwoBeforeAnyDocument) {
  testing::WriteFile(dir_.File("refused.json"),
                     R"({"type": "object", "properties": {"h": {"format": "hostname"}}})");
  testing::WriteFile(dir_.File("bad_rules.yaml"),
                     "version: 1\nrules:\n  - name: x\n    expr: '.a ==='\n");
  testing::WriteFile(dir_.File("dup.jsonl"),
                     "{\"id\": 1, \"text\": \"a\"}\n{\"id\": 1, \"text\": \"b\"}\n");
  const std::string base =
      Bin() + " extract --model " + dir_.File("hf") + " --output " + dir_.File("never.jsonl") + " ";
  const std::pair<std::string, std::string> cases[] = {
      {"--schema " + dir_.File("refused.json") + " --input " + dir_.File("docs"),
       "\"format\" at \"/properties/h\""},
      {"--schema " + dir_.File("schema.json") + " --rules " + dir_.File("bad_rules.yaml") +
           " --input " + dir_.File("docs"),
       "bad_rules.yaml:4:11 (rule \"x\", expr)"},
      {"--schema " + dir_.File("schema.json") + " --input " + dir_.File("dup.jsonl"),
       "document id 1 appears more than once"},
      {"--schema " + dir_.File("schema.json") + " --input " + dir_.File("nope"),
       "no such file or directory"},
      {"--schema " + dir_.File("schema.json") + " --input " + dir_.File("docs") +
           " --concurrency 0",
       "--concurrency"},
      {"--schema " + dir_.File("schema.json") + " --input " + dir_.File("docs") + " --max-tokens 3",
       "cannot fit the schema's shortest value"},
  };
  for (const auto& [args, expected] : cases) {
    testing::CommandResult r = RunCommand(base + args);
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.err;
    EXPECT_NE(r.err.find(expected), std::string::npos) << args << "\n" << r.err;
    EXPECT_FALSE(std::filesystem::exists(dir_.File("never.jsonl")));
    EXPECT_FALSE(std::filesystem::exists(dir_.File("never.jsonl.journal"))) << args;
  }
}

}  // namespace
}  // namespace gemma_local
