// The public quantization entry points (include/gemma_local/quantize.h) over model/quantize.h:
// front ends name a type by string and never see QuantMix or Checkpoint.
#include "gemma_local/quantize.h"

#include "model/checkpoint.h"
#include "model/quantize.h"

namespace gemma_local {

std::vector<std::string> QuantizeTypeNames() { return QuantMixNames(); }

Result<std::string> CanonicalQuantizeType(const std::string& type) {
  GL_ASSIGN_OR_RETURN(QuantMix mix, ParseQuantMix(type));
  return QuantMixName(mix);
}

Status QuantizeGgufFile(const std::string& in_path, const std::string& out_path,
                        const std::string& type, int threads) {
  GL_ASSIGN_OR_RETURN(QuantMix mix, ParseQuantMix(type));
  GL_ASSIGN_OR_RETURN(Checkpoint ck, Checkpoint::Open(in_path));
  return WriteQuantizedGguf(ck, mix, out_path, threads);
}

}  // namespace gemma_local
