// Malformed tokenizer.json / tokenizer_config.json: every wrong type, deep nesting and absurd id is
// a clean error naming the file and field, never an exception, a crash or a huge allocation.
#include <gtest/gtest.h>

#include <cstdio>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "gemma_local/tokenizer.h"

namespace gemma_local {
namespace {

using nlohmann::json;

// A minimal valid Gemma-style tokenizer.json: <unk> 0, <bos> 1, <eos> 2, <0x00>..<0xFF>, "a".
json MinimalTokenizer() {
  json vocab = json::object();
  int id = 0;
  for (const char* p : {"<unk>", "<bos>", "<eos>"}) vocab[p] = id++;
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    vocab[name] = id++;
  }
  vocab["a"] = id++;
  json added = json::array();
  for (int i = 0; i < 3; ++i) {
    added.push_back({{"id", i},
                     {"content", i == 0   ? "<unk>"
                                 : i == 1 ? "<bos>"
                                          : "<eos>"},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"single_word", false},
                     {"normalized", false},
                     {"special", true}});
  }
  json j;
  j["added_tokens"] = added;
  j["normalizer"] = {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\u2581"}};
  j["pre_tokenizer"] = nullptr;
  j["post_processor"] = {{"type", "TemplateProcessing"},
                         {"single", json::array({{{"SpecialToken", {{"id", "<bos>"}}}}})}};
  j["model"] = {{"type", "BPE"},
                {"byte_fallback", true},
                {"unk_token", "<unk>"},
                {"vocab", vocab},
                {"merges", json::array()}};
  return j;
}

Result<std::shared_ptr<const Tokenizer>> Load(const std::string& tokenizer_json,
                                              const std::string& config_json = "") {
  Result<std::shared_ptr<const Tokenizer>> r = InternalError("not run");
  EXPECT_NO_THROW(r = Tokenizer::FromHfJson(tokenizer_json, config_json, "t.json"));
  return r;
}

TEST(TokenizerLoadTest, MinimalFileLoads) {
  auto t = Load(MinimalTokenizer().dump());
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(*(*t)->Encode("a"), (std::vector<int32_t>{1, 259}));
}

TEST(TokenizerLoadTest, WrongTypesAreErrorsNamingTheField) {
  struct Case {
    const char* name;
    std::function<void(json&)> edit;
    StatusCode code;
    std::string error;
  };
  const Case cases[] = {
      {"model.type number", [](json& j) { j["model"]["type"] = 5; }, StatusCode::kCorruptData,
       "t.json: model.type: expected a string, got number"},
      {"byte_fallback string", [](json& j) { j["model"]["byte_fallback"] = "yes"; },
       StatusCode::kCorruptData, "t.json: model.byte_fallback: expected a boolean, got string"},
      {"ignore_merges number", [](json& j) { j["model"]["ignore_merges"] = 0; },
       StatusCode::kCorruptData, "t.json: model.ignore_merges: expected a boolean, got number"},
      {"unk_token object", [](json& j) { j["model"]["unk_token"] = json::object(); },
       StatusCode::kCorruptData, "t.json: model.unk_token: expected a string, got object"},
      {"added lstrip string", [](json& j) { j["added_tokens"][1]["lstrip"] = "no"; },
       StatusCode::kCorruptData, "t.json: added_tokens[1].lstrip: expected a boolean, got string"},
      {"added special number", [](json& j) { j["added_tokens"][0]["special"] = 1; },
       StatusCode::kCorruptData, "t.json: added_tokens[0].special: expected a boolean, got number"},
      {"added id string", [](json& j) { j["added_tokens"][0]["id"] = "0"; },
       StatusCode::kCorruptData, "t.json: an added_tokens entry lacks an integer id or content"},
      {"added entry number", [](json& j) { j["added_tokens"][2] = 7; }, StatusCode::kCorruptData,
       "t.json: an added_tokens entry lacks an integer id or content"},
      {"added_tokens object", [](json& j) { j["added_tokens"] = json::object(); },
       StatusCode::kCorruptData, "t.json: added_tokens is not an array"},
      {"normalizer type number", [](json& j) { j["normalizer"]["type"] = 5; },
       StatusCode::kUnsupported,
       "t.json: normalizer must be Replace(\" \" -> \"\\u2581\"), got "
       "{\"content\":\"\xE2\x96\x81\",\"pattern\":{\"String\":\" \"},\"type\":5}"},
      {"pre_tokenizer invert string",
       [](json& j) {
         j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"String", " "}}}, {"invert", "x"}};
       },
       StatusCode::kUnsupported,
       "t.json: pre_tokenizer must be null or Split(\" \"), got "
       "{\"invert\":\"x\",\"pattern\":{\"String\":\" \"},\"type\":\"Split\"}"},
      {"post_processor id number",
       [](json& j) { j["post_processor"]["single"][0]["SpecialToken"]["id"] = 5; },
       StatusCode::kCorruptData,
       "t.json: post_processor.single[0].SpecialToken.id: expected a string, got number"},
      {"model not an object", [](json& j) { j["model"] = "BPE"; }, StatusCode::kCorruptData,
       "t.json: no \"model\" object"},
      {"huge sparse id", [](json& j) { j["added_tokens"][2]["id"] = (1 << 30) - 1; },
       StatusCode::kCorruptData,
       "t.json: vocabulary ids go up to 1073741823 but only 263 entries define pieces (ids must be "
       "dense)"},
      {"vocab id of 19 digits",  // past the fast 18-digit path (which must not overflow)
       [](json& j) { j["model"]["vocab"]["a"] = 1000000000000000000; }, StatusCode::kCorruptData,
       "t.json: vocabulary ids out of range (max 1000000000000000000)"},
      {"vocab id beyond int64", [](json& j) { j["model"]["vocab"]["a"] = UINT64_MAX; },
       StatusCode::kCorruptData, "t.json: model.vocab[a] is not an integer"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    json j = MinimalTokenizer();
    c.edit(j);
    auto t = Load(j.dump());
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.status().code(), c.code);
    EXPECT_EQ(t.status().message(), c.error);
  }
}

TEST(TokenizerLoadTest, DeepNestingIsHarmless) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  // In a member the loader never reads: accepted.
  std::string text = MinimalTokenizer().dump();
  text.insert(1, "\"decoder\":" + deep + ",");
  EXPECT_TRUE(Load(text).ok());
  // In one it prints in its error: printed as a placeholder, not recursed into.
  json j = MinimalTokenizer();
  j.erase("normalizer");
  text = j.dump();
  text.insert(1, "\"normalizer\":" + deep + ",");
  auto t = Load(text);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().message(),
            "t.json: normalizer must be Replace(\" \" -> \"\\u2581\"), got <deeply nested value>");
}

TEST(TokenizerLoadTest, MalformedConfigIsAnErrorOrIgnoredNeverAThrow) {
  const std::string tok = MinimalTokenizer().dump();
  EXPECT_EQ(Load(tok, "[1]").status().message(),
            "t.json: tokenizer_config.json is not a JSON object");
  EXPECT_EQ(Load(tok, "{\"a\":").status().code(), StatusCode::kCorruptData);
  EXPECT_EQ(Load(tok, std::string("{}\0", 3)).status().message(),
            "t.json: tokenizer_config.json contains a NUL byte");
  // Token entries and flags of another type are advisory: ignored, as before.
  for (const char* config :
       {R"({"bos_token": 5, "eos_token": [], "pad_token": {"content": 1}})",
        R"({"add_bos_token": "yes", "add_eos_token": null})",
        R"({"bos_token": {"content": "<eos>"}, "additional_special_tokens": 3})"}) {
    auto t = Load(tok, config);
    EXPECT_TRUE(t.ok()) << config << ": " << t.status().ToString();
  }
  auto eos_bos = Load(tok, R"({"bos_token": {"content": "<eos>"}, "add_bos_token": true})");
  ASSERT_TRUE(eos_bos.ok());
  EXPECT_EQ(*(*eos_bos)->Encode("a"), (std::vector<int32_t>{2, 259}));
}

}  // namespace
}  // namespace gemma_local
