// `gemma-local quantize`: a quantized GGUF that loads and runs, and clear errors for bad input.
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "common/test_support.h"

namespace gemma_local {
namespace {

using testing::RunCommand;
using testing::TempDir;

std::string Bin() { return testing::BinaryPath(); }

TEST(QuantizeCli, WritesARunnableFileAndRejectsBadInput) {
  TempDir dir;
  ASSERT_EQ(RunCommand(Bin() + " dev make-model --out " + dir.path() + " --preset tiny").exit_code, 0);
  const std::string in = dir.File("model.gguf"), out = dir.File("q.gguf");
  testing::CommandResult q = RunCommand(Bin() + " quantize " + in + " " + out + " --type q8_0");
  ASSERT_EQ(q.exit_code, 0) << q.err;
  testing::CommandResult info = RunCommand(Bin() + " inspect --json " + out);
  ASSERT_EQ(info.exit_code, 0) << info.err;
  EXPECT_NE(info.out.find("q8_0"), std::string::npos) << info.out;
  testing::CommandResult run = RunCommand(Bin() + " run --json --max-tokens 2 --model " + out + " --tokens 2,300");
  EXPECT_EQ(run.exit_code, 0) << run.err;

  // The output exists: refused without --force, replaced with it.
  testing::CommandResult again = RunCommand(Bin() + " quantize " + in + " " + out + " --type q4_0");
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_NE(again.err.find("--force"), std::string::npos) << again.err;
  EXPECT_EQ(RunCommand(Bin() + " quantize " + in + " " + out + " --type q4_0 --force").exit_code, 0);

  testing::CommandResult bad_type = RunCommand(Bin() + " quantize " + in + " " + dir.File("x.gguf") + " --type q7");
  EXPECT_EQ(bad_type.exit_code, 2);
  EXPECT_NE(bad_type.err.find("q4_k_m"), std::string::npos) << "lists the accepted types: " << bad_type.err;
  testing::CommandResult missing = RunCommand(Bin() + " quantize " + dir.File("none.gguf") + " " + dir.File("y.gguf") + " --type q8_0");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("none.gguf"), std::string::npos) << missing.err;
  testing::CommandResult hf = RunCommand(Bin() + " quantize " + dir.File("hf") + " " + dir.File("z.gguf") + " --type q8_0");
  EXPECT_EQ(hf.exit_code, 1);
  EXPECT_NE(hf.err.find("--quantize"), std::string::npos) << hf.err;
  EXPECT_FALSE(std::filesystem::exists(dir.File("z.gguf")));

  // Load-time quantization: bad type is a usage-level error naming it.
  testing::CommandResult load = RunCommand(Bin() + " run --model " + in + " --tokens 2,300 --quantize q9");
  EXPECT_NE(load.exit_code, 0);
  EXPECT_NE(load.err.find("q9"), std::string::npos) << load.err;
}

}  // namespace
}  // namespace gemma_local
