// ReplyAssembler on the real synthetic vocabulary: stop strings are cut and never released,
// released text never splits a UTF-8 character, Gemma 4 markers are parsed.
#include "runtime/reply_assembler.h"

#include <gtest/gtest.h>

#include "common/test_support.h"
#include "testgen/make_test_model.h"

namespace gemma_local {
namespace {

std::shared_ptr<const Tokenizer> SyntheticTokenizer(bool gemma4) {
  static testing::TempDir* dir = new testing::TempDir();
  testgen::TestModelOptions opt;
  opt.hparams = *testgen::PresetShape(gemma4 ? "g4-e2b-like" : "tiny");
  opt.write_gguf = false;
  Result<testgen::WrittenModel> w = testgen::WriteTestModel(opt, dir->File(gemma4 ? "g4" : "g3"));
  EXPECT_TRUE(w.ok());
  Result<std::shared_ptr<const Tokenizer>> t = Tokenizer::Load(w->hf_dir);
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return *t;
}

std::vector<int32_t> Ids(const Tokenizer& t, const std::string& text) {
  Result<std::vector<int32_t>> ids = t.Encode(text, EncodeOptions{false, true});
  EXPECT_TRUE(ids.ok());
  return *ids;
}

std::string Content(const std::vector<ReplyEvent>& events) {
  std::string s;
  for (const ReplyEvent& e : events) {
    if (e.kind == ReplyEvent::Kind::kContent) s += e.text;
  }
  return s;
}

TEST(ReplyAssembler, StopStringsAreHeldBackThenCut) {
  auto tok = SyntheticTokenizer(false);
  const std::vector<int32_t> ids = Ids(*tok, "hello world, the model is here");
  ReplyAssembler a(tok, {1, 106}, {"model"}, false);
  std::string released;
  bool stopped = false;
  for (int32_t id : ids) {
    std::vector<ReplyEvent> out;
    stopped = a.Push(id, &out);
    released += Content(out);
    EXPECT_EQ(released.find("mod"), std::string::npos) << "a possible stop-string start was released";
    if (stopped) break;
  }
  EXPECT_TRUE(stopped);
  EXPECT_EQ(released, "hello world, the ");
}

TEST(ReplyAssembler, TheEarliestStopStringWinsWhateverItsPlaceInTheList) {
  auto tok = SyntheticTokenizer(false);
  for (const std::vector<std::string>& stops :
       {std::vector<std::string>{"model", "the"}, std::vector<std::string>{"the", "model"},
        std::vector<std::string>{"xyz", "e mo", "the"}}) {
    ReplyAssembler a(tok, {}, stops, false);
    std::string released;
    for (int32_t id : Ids(*tok, "hello world, the model is here")) {
      std::vector<ReplyEvent> out;
      const bool stopped = a.Push(id, &out);
      released += Content(out);
      if (stopped) break;
    }
    EXPECT_TRUE(a.stopped());
    EXPECT_EQ(released, "hello world, ") << stops[0];
  }
}

TEST(ReplyAssembler, ByteTokensNeverSplitACharacter) {
  auto tok = SyntheticTokenizer(false);
  // "é" and "€" as byte-fallback pieces (<0xC3><0xA9>, <0xE2><0x82><0xAC>) with an invalid stop
  // string that starts inside a character.
  const std::vector<int32_t> ids = Ids(*tok, "aé€b");
  ReplyAssembler a(tok, {}, {"\x82\xAC" "c"}, false);
  std::string released;
  for (int32_t id : ids) {
    std::vector<ReplyEvent> out;
    a.Push(id, &out);
    for (const ReplyEvent& e : out) {
      ASSERT_FALSE(e.text.empty());
      EXPECT_NE(static_cast<unsigned char>(e.text[0]) & 0xC0, 0x80) << "piece starts mid-character";
    }
    released += Content(out);
  }
  std::vector<ReplyEvent> rest;
  a.Finish(&rest);
  released += Content(rest);
  EXPECT_EQ(released, "aé€b");
}

TEST(ReplyAssembler, Gemma4MarkersAreParsed) {
  auto tok = SyntheticTokenizer(true);
  std::vector<int32_t> ids = {*tok->PieceToId("<|channel>")};
  for (int32_t id : Ids(*tok, "thought\nhmm")) ids.push_back(id);
  ids.push_back(*tok->PieceToId("<channel|>"));
  for (int32_t id : Ids(*tok, "answer")) ids.push_back(id);
  ReplyAssembler a(tok, {1, 106, 50}, {}, true);
  std::vector<ReplyEvent> out;
  for (int32_t id : ids) a.Push(id, &out);
  a.Finish(&out);
  ASSERT_NE(a.reply(), nullptr);
  EXPECT_EQ(a.reply()->reasoning, "hmm");
  EXPECT_EQ(a.reply()->content, "answer");
  EXPECT_EQ(Content(out), "answer");
}

}  // namespace
}  // namespace gemma_local
