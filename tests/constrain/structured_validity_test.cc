// Issue 15's validity corpus: 67 hand-written real-world schemas (tests/constrain/corpus/) and
// 150 generated ones, each run greedy and with 3 sampled seeds on a random-weight model, where
// nothing but the constraint shapes the output. Every output must end as a complete value, every
// schema whose keywords are all enforced while generating must give valid values, and an
// independent validator (ajv, pinned in tests/server_clients) must agree with the engine's verdict
// on every output, including the schemas with keywords only checked after ("v": true).
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "common/test_support.h"
#include "gemma_local/engine.h"
#include "runtime/runtime_test_support.h"

namespace gemma_local {
namespace {

using Json = nlohmann::ordered_json;

struct CorpusSchema {
  std::string name;
  Json schema;
  bool checked_after = false;  // uses keywords the grammar cannot enforce
};

// Random schemas over the keywords enforced while generating, from a fixed seed.
class SchemaGenerator {
 public:
  explicit SchemaGenerator(uint32_t seed) : rng_(seed) {}

  Json Schema(int depth) {
    switch (Pick(depth >= 3 ? 6 : 9)) {
      case 0:
        return StringSchema();
      case 1:
        return IntegerSchema();
      case 2: {
        Json s = {{"type", "number"}};
        if (Pick(2)) s["minimum"] = -static_cast<int>(Pick(1000));
        if (Pick(2)) s["maximum"] = static_cast<int>(Pick(1000));
        return s;
      }
      case 3:
        return Json{{"type", "boolean"}};
      case 4:
        return EnumSchema();
      case 5:
        return Json{{"type", Json::array({"string", "null"})}, {"maxLength", 1 + Pick(8)}};
      case 6:
        return ObjectSchema(depth + 1);
      case 7: {
        Json s = {{"type", "array"}, {"items", Schema(depth + 1)}};
        if (Pick(2)) s["minItems"] = Pick(3);
        s["maxItems"] = s.value("minItems", 0) + Pick(4);
        return s;
      }
      default: {
        Json any = Json::array();
        const int n = 2 + static_cast<int>(Pick(2));
        for (int i = 0; i < n; ++i) any.push_back(Schema(depth + 1));
        return Json{{"anyOf", any}};
      }
    }
  }

  Json ObjectSchema(int depth) {
    Json props = Json::object();
    Json required = Json::array();
    const int n = 1 + static_cast<int>(Pick(5));
    for (int i = 0; i < n; ++i) {
      const std::string key = kKeys[Pick(std::size(kKeys))] + std::to_string(i);
      props[key] = Schema(depth);
      if (Pick(3) != 0) required.push_back(key);
    }
    Json s = {{"type", "object"}, {"properties", props}, {"required", required}};
    s["additionalProperties"] = Pick(4) == 0 ? Json(Json{{"type", "integer"}}) : Json(false);
    if (s["additionalProperties"].is_object()) s["maxProperties"] = n + 1;
    return s;
  }

 private:
  static constexpr const char* kKeys[] = {"name", "id",   "total", "date", "items",
                                          "note", "ñame", "a b",   "q\"k", "值"};
  uint32_t Pick(size_t n) { return static_cast<uint32_t>(rng_() % n); }

  Json StringSchema() {
    Json s = {{"type", "string"}};
    switch (Pick(6)) {
      case 0:
        s["maxLength"] = 1 + Pick(12);
        break;
      case 1:
        s["minLength"] = Pick(3), s["maxLength"] = 3 + Pick(10);
        break;
      case 2: {
        static constexpr const char* kPatterns[] = {"^[A-Z]{2}-[0-9]{3}$", "^[a-z]+$",
                                                    "^(yes|no|maybe)$",    "^\\d{1,4}(\\.\\d{2})?$",
                                                    "^[^\"\\\\]{0,6}$",    "x+y?z*"};
        s["pattern"] = kPatterns[Pick(std::size(kPatterns))];
        if (s["pattern"] == "x+y?z*") s["maxLength"] = 6;
        break;
      }
      case 3: {
        static constexpr const char* kFormats[] = {"date",  "time", "date-time",
                                                   "email", "uuid", "uri"};
        s["format"] = kFormats[Pick(std::size(kFormats))];
        break;
      }
      default:
        break;
    }
    return s;
  }

  Json IntegerSchema() {
    Json s = {{"type", "integer"}};
    const int lo = static_cast<int>(Pick(200)) - 100;
    if (Pick(2)) s["minimum"] = lo;
    if (Pick(2)) s["maximum"] = lo + static_cast<int>(Pick(500));
    if (Pick(5) == 0) s["exclusiveMinimum"] = lo - 1, s.erase("minimum");
    return s;
  }

  Json EnumSchema() {
    static const Json kValues = Json::array({"red", "green", "blue\"s", 1, 2.5, nullptr, true, "ü",
                                             Json::array({1, 2}), Json{{"k", "v"}}});
    Json values = Json::array();
    const size_t n = 1 + Pick(4);
    for (size_t i = 0; i < n; ++i) {
      const Json& v = kValues[Pick(kValues.size())];
      if (std::find(values.begin(), values.end(), v) == values.end()) values.push_back(v);
    }
    if (values.size() == 1 && Pick(2)) return Json{{"const", values[0]}};
    return Json{{"enum", values}};
  }

  std::mt19937 rng_;
};

std::vector<CorpusSchema> Corpus() {
  std::vector<CorpusSchema> corpus;
  std::ifstream in(testing::SourceDir() + "/tests/constrain/corpus/handwritten.json");
  const Json hand = Json::parse(in);
  for (const Json& entry : hand) {
    corpus.push_back({entry["name"], entry["schema"], entry.value("v", false)});
  }
  SchemaGenerator generator(20261206);
  for (int i = 0; i < 150; ++i) {
    Json schema = i % 3 == 0 ? generator.Schema(0) : generator.ObjectSchema(1);
    corpus.push_back({"generated_" + std::to_string(i), std::move(schema), false});
  }
  return corpus;
}

TEST(StructuredValidity, CorpusOutputsAreCompleteAndAjvAgreesWithTheEngine) {
  const std::vector<CorpusSchema> corpus = Corpus();
  ASSERT_GE(corpus.size(), 200u);
  EngineOptions options;
  options.threads = 2;
  options.max_running_requests = 16;
  Result<std::unique_ptr<Engine>> engine = Engine::Open(testing::PresetModelPath("tiny"), options);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();

  struct Pending {
    size_t schema;
    std::unique_ptr<RequestHandle> handle;
  };
  std::vector<Pending> pending;
  for (size_t i = 0; i < corpus.size(); ++i) {
    const Constraint constraint = Constraint::JsonSchema(corpus[i].schema);
    Result<ConstraintReport> report = InspectConstraint(constraint);
    ASSERT_TRUE(report.ok()) << corpus[i].name << ": " << report.status().ToString();
    Request request;
    request.input = RequestInput::Tokens({2, 10 + static_cast<int32_t>(i % 50), 11, 12});
    request.max_tokens = std::max<int64_t>(160, report->min_bytes + 64);
    request.constraint = constraint;
    Result<std::unique_ptr<RequestHandle>> greedy = (*engine)->Submit(request);
    ASSERT_TRUE(greedy.ok()) << corpus[i].name << ": " << greedy.status().ToString();
    pending.push_back({i, std::move(*greedy)});
    request.sampling.temperature = 1.0f;
    request.sampling.top_p = 0.95f;
    request.sampling.seed = 1000 + i;
#if defined(__SANITIZE_ADDRESS__)
    constexpr int kSampled = 1;  // ~5x slower under the sanitizers; Release runs all three
#else
    constexpr int kSampled = 3;
#endif
    Result<std::vector<std::unique_ptr<RequestHandle>>> sampled =
        (*engine)->SubmitSamples(request, kSampled);
    ASSERT_TRUE(sampled.ok()) << corpus[i].name << ": " << sampled.status().ToString();
    for (auto& h : *sampled) pending.push_back({i, std::move(h)});
  }

  testing::TempDir dir;
  const std::string outputs = dir.File("outputs.jsonl");
  std::ofstream out(outputs);
  int valid = 0;
  for (Pending& p : pending) {
    const CorpusSchema& s = corpus[p.schema];
    Result<Completion> c = p.handle->Wait();
    ASSERT_TRUE(c.ok()) << s.name << ": " << c.status().ToString();
    ASSERT_TRUE(c->constraint.has_value());
    EXPECT_EQ(c->finish_reason, "stop") << s.name << ": " << c->text;
    EXPECT_TRUE(c->constraint->complete) << s.name << ": " << c->text;
    if (!s.checked_after) {
      EXPECT_TRUE(c->constraint->valid) << s.name << ": " << c->text;
    } else {
      EXPECT_EQ(c->constraint->valid, c->constraint->violations.empty()) << s.name;
    }
    valid += c->constraint->valid ? 1 : 0;
    out << Json{{"name", s.name},
                {"schema", s.schema},
                {"text", c->text},
                {"valid", c->constraint->valid}}
               .dump(-1, ' ', false, Json::error_handler_t::replace)
        << "\n";
  }
  out.close();
  std::printf("structured validity: %zu schemas, %zu outputs, %d valid by the engine\n",
              corpus.size(), pending.size(), valid);

  const testing::CommandResult node = testing::RunCommand("command -v node");
  GL_REQUIRE_REFERENCE(node.exit_code == 0, "node is not installed (scripts/setup.sh)");
  const testing::CommandResult ajv = testing::RunCommand(
      "node " + testing::SourceDir() + "/tests/server_clients/ajv_check.mjs " + outputs);
  GL_REQUIRE_REFERENCE(ajv.exit_code != 77, ajv.out);
  EXPECT_EQ(ajv.exit_code, 0) << ajv.out << ajv.err;
  std::printf("%s", ajv.out.substr(0, 2000).c_str());
}

}  // namespace
}  // namespace gemma_local
