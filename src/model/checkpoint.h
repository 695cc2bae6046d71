// A Gemma checkpoint opened from either layout, before any weights are touched: the Hugging Face
// directory (config.json + safetensors, single or sharded, + tokenizer files) or one GGUF file.
//
// Weights stay memory-mapped; tensors are listed under their canonical (GGUF) names with GGUF
// dimension order (innermost first) whatever the source, so one forward pass per family serves
// both formats. Thread-safety: immutable after Open.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "formats/gguf.h"
#include "formats/safetensors.h"
#include "model/hparams.h"

namespace gemma_local {

enum class CheckpointFormat { kGguf, kHuggingFace };

struct WeightTensor {
  std::string name;       // canonical, e.g. "blk.0.attn_q.weight"
  std::string file_name;  // as stored in the file
  DType dtype = DType::kF32;
  std::vector<int64_t> ne;  // innermost first (HF [out, in] becomes {in, out})
  const uint8_t* data = nullptr;
  uint64_t n_bytes = 0;
  uint64_t n_elements() const;
};

class Checkpoint {
 public:
  // `path`: a .gguf file, or an HF checkpoint directory (or its config.json).
  static Result<Checkpoint> Open(const std::string& path);

  CheckpointFormat format() const { return format_; }
  const std::string& path() const { return path_; }
  const HParams& hparams() const { return hparams_; }
  // Text-decoder tensors, sorted by canonical name.
  const std::vector<WeightTensor>& tensors() const { return tensors_; }
  const WeightTensor* FindTensor(const std::string& canonical_name) const;
  // Tensors outside the text decoder (vision tower, projector...), by file name.
  const std::vector<std::string>& other_tensor_names() const { return other_tensor_names_; }

  // Bytes of the weight files (GGUF file or all safetensors shards).
  uint64_t file_bytes() const { return file_bytes_; }
  bool has_tokenizer() const { return has_tokenizer_; }
  bool has_chat_template() const { return has_chat_template_; }
  // Gemma 3 GGUF stores norm weights as (1 + w) (llama.cpp's converter adds the 1); HF stores w.
  bool norm_weights_include_unit_offset() const { return norm_unit_offset_; }
  // An error naming the first tensor whose dtype is not in `supported` (the inference path calls
  // this with what its kernels can compute; loading itself accepts every known type).
  Status RequireDTypes(const std::vector<DType>& supported) const;

  // Load-time quantization (model/quantize.h): `canonical_name` now holds `data` in `dtype` (same
  // dims), owned by the checkpoint. Only while the checkpoint is not yet shared.
  Status ReplaceTensorData(const std::string& canonical_name, DType dtype,
                           std::shared_ptr<const std::vector<uint8_t>> data);

  // True while every tensor's data lies in the read-only file mappings (nothing replaced), so
  // pages of a tensor the backend has copied may be released back to the file.
  bool all_tensors_file_backed() const { return owned_.empty(); }

  // Only for GGUF checkpoints (tokenizer metadata lives there); null otherwise.
  const gguf::GgufFile* gguf() const { return gguf_.get(); }

 private:
  CheckpointFormat format_ = CheckpointFormat::kGguf;
  std::string path_;
  HParams hparams_;
  std::vector<WeightTensor> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
  std::vector<std::string> other_tensor_names_;
  uint64_t file_bytes_ = 0;
  bool has_tokenizer_ = false;
  bool has_chat_template_ = false;
  bool norm_unit_offset_ = false;
  std::shared_ptr<gguf::GgufFile> gguf_;
  std::shared_ptr<safetensors::SafetensorsCheckpoint> safetensors_;
  std::vector<std::shared_ptr<const std::vector<uint8_t>>> owned_;  // replaced tensor data

  static Result<Checkpoint> OpenGguf(const std::string& path);
  static Result<Checkpoint> OpenHf(const std::string& dir);
  void BuildIndex();
  // Every required decoder tensor present with the dims the hparams imply, norms in a float type,
  // and no tensor the decoder does not have. Errors name the file, tensor and expected vs actual.
  Status ValidateTensors() const;
};

}  // namespace gemma_local
