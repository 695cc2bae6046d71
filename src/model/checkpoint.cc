#include "model/checkpoint.h"

#include <algorithm>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/error_text.h"
#include "core/json_access.h"
#include "core/mapped_file.h"
#include "model/gguf_hparams.h"
#include "model/hf_config.h"
#include "model/tensor_names.h"
#include "model/tensor_table.h"

namespace gemma_local {

namespace fs = std::filesystem;

uint64_t WeightTensor::n_elements() const {
  uint64_t n = 1;
  for (int64_t d : ne) n *= static_cast<uint64_t>(d);
  return n;
}

const WeightTensor* Checkpoint::FindTensor(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

void Checkpoint::BuildIndex() {
  std::sort(tensors_.begin(), tensors_.end(),
            [](const WeightTensor& a, const WeightTensor& b) { return a.name < b.name; });
  index_.clear();
  for (size_t i = 0; i < tensors_.size(); ++i) index_[tensors_[i].name] = i;
}

Result<Checkpoint> Checkpoint::Open(const std::string& path) {
  std::error_code ec;
  const fs::path p(path);
  if (!fs::exists(p, ec)) return NotFoundError(path + ": no such file or directory");
  if (fs::is_directory(p, ec)) return OpenHf(path);
  if (p.filename() == "config.json") return OpenHf(p.parent_path().empty() ? "." : p.parent_path().string());
  if (p.extension() == ".safetensors") {
    return InvalidArgumentError(path + ": pass the checkpoint directory (with config.json), not a .safetensors file");
  }
  return OpenGguf(path);
}

Result<Checkpoint> Checkpoint::OpenGguf(const std::string& path) {
  GL_ASSIGN_OR_RETURN(gguf::GgufFile file, gguf::GgufFile::Open(path));
  Checkpoint ck;
  ck.format_ = CheckpointFormat::kGguf;
  ck.path_ = path;
  ck.gguf_ = std::make_shared<gguf::GgufFile>(std::move(file));
  const gguf::GgufFile& f = *ck.gguf_;
  GL_ASSIGN_OR_RETURN(ck.hparams_, HParamsFromGguf(f));
  for (const gguf::TensorInfo& t : f.tensors()) {
    ck.tensors_.push_back(WeightTensor{t.name, t.name, t.dtype, t.ne, t.data, t.n_bytes});
  }
  ck.file_bytes_ = f.file_size();
  ck.has_tokenizer_ = f.Find("tokenizer.ggml.tokens") != nullptr;
  ck.has_chat_template_ = f.Find("tokenizer.chat_template") != nullptr;
  ck.norm_unit_offset_ = ck.hparams_.family == ModelFamily::kGemma3;
  ck.BuildIndex();
  GL_RETURN_IF_ERROR(ck.ValidateTensors());
  return ck;
}

namespace {

std::string Describe(const WeightTensor& t) {
  return t.file_name == t.name ? "tensor '" + t.name + "'" : "tensor '" + t.file_name + "' (" + t.name + ")";
}

}  // namespace

Status Checkpoint::ValidateTensors() const {
  const std::string arch = ModelFamilyName(hparams_.family);
  std::map<std::string, const ExpectedTensor*, std::less<>> expected;
  const std::vector<ExpectedTensor> table = ExpectedDecoderTensors(hparams_);
  for (const ExpectedTensor& e : table) expected[e.name] = &e;
  for (const ExpectedTensor& e : table) {
    const WeightTensor* t = FindTensor(e.name);
    if (t == nullptr) {
      if (!e.required) continue;
      return NotFoundError(path_ + ": tensor '" + e.name + "' is missing (expected dims " + DimsText(e.ne) +
                           " for this " + arch + " configuration)");
    }
    if (t->ne != e.ne) {
      return CorruptDataError(path_ + ": " + Describe(*t) + " has dims " + DimsText(t->ne) + ", expected " +
                              DimsText(e.ne) + " (innermost first) for the configured hyper-parameters");
    }
    if (e.role != TensorRole::kMatrix && e.role != TensorRole::kEmbedding && !IsPlainFloat(t->dtype)) {
      return UnsupportedError(path_ + ": " + Describe(*t) + " is " + DTypeName(t->dtype) +
                              "; norm and scale weights must be f32, f16 or bf16");
    }
  }
  for (int64_t i = 0; i < hparams_.n_layers && hparams_.n_experts > 0; ++i) {
    const std::string b = "blk." + std::to_string(i) + ".";
    const bool fused = FindTensor(b + "ffn_gate_up_exps.weight") != nullptr;
    const bool split = FindTensor(b + "ffn_gate_exps.weight") != nullptr && FindTensor(b + "ffn_up_exps.weight") != nullptr;
    if (!fused && !split) {
      return NotFoundError(path_ + ": tensor '" + b + "ffn_gate_up_exps.weight' is missing (nor are split " + b +
                           "ffn_gate_exps / ffn_up_exps present)");
    }
  }
  for (const WeightTensor& t : tensors_) {
    if (expected.find(t.name) == expected.end()) {
      return CorruptDataError(path_ + ": unexpected " + Describe(t) + ": not part of a " + arch + " decoder with " +
                              std::to_string(hparams_.n_layers) + " layers");
    }
  }
  return Status::Ok();
}

Status Checkpoint::RequireDTypes(const std::vector<DType>& supported) const {
  for (const WeightTensor& t : tensors_) {
    if (std::find(supported.begin(), supported.end(), t.dtype) == supported.end()) {
      return UnsupportedError(path_ + ": " + Describe(t) + " has type " + DTypeName(t.dtype) +
                              ", which this build cannot compute yet");
    }
  }
  return Status::Ok();
}

Status Checkpoint::ReplaceTensorData(const std::string& canonical_name, DType dtype,
                                     std::shared_ptr<const std::vector<uint8_t>> data) {
  auto it = index_.find(canonical_name);
  if (it == index_.end()) return NotFoundError(path_ + ": tensor '" + canonical_name + "' is missing");
  WeightTensor& t = tensors_[it->second];
  GL_ASSIGN_OR_RETURN(uint64_t want, DTypeByteSize(dtype, t.n_elements()));
  if (data == nullptr || data->size() != want) {
    return InvalidArgumentError(path_ + ": replacement data for '" + canonical_name + "' has the wrong size");
  }
  t.dtype = dtype;
  t.data = data->data();
  t.n_bytes = want;
  owned_.push_back(std::move(data));
  return Status::Ok();
}

namespace {

// chat_template.jinja, chat_template.json, or "chat_template" in tokenizer_config.json.
Result<bool> HfHasChatTemplate(const fs::path& dir) {
  std::error_code ec;
  if (fs::exists(dir / "chat_template.jinja", ec) || fs::exists(dir / "chat_template.json", ec)) return true;
  const fs::path cfg = dir / "tokenizer_config.json";
  if (!fs::exists(cfg, ec)) return false;
  GL_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(cfg.string(), 64u << 20));
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return CorruptDataError(cfg.string() + ": not a JSON object");
  const nlohmann::json* tmpl = JsonFind(j, "chat_template");
  return tmpl != nullptr && !tmpl->is_null();
}

}  // namespace

Result<Checkpoint> Checkpoint::OpenHf(const std::string& dir_str) {
  const fs::path dir(dir_str);
  std::error_code ec;
  const fs::path config = dir / "config.json";
  if (!fs::exists(config, ec)) {
    return NotFoundError(dir_str + ": not a GGUF file or a Hugging Face checkpoint directory (config.json is missing)");
  }
  Checkpoint ck;
  ck.format_ = CheckpointFormat::kHuggingFace;
  ck.path_ = dir_str;
  GL_ASSIGN_OR_RETURN(ck.hparams_, LoadHfConfig(config.string()));
  GL_ASSIGN_OR_RETURN(safetensors::SafetensorsCheckpoint st, safetensors::SafetensorsCheckpoint::Open(dir_str));
  ck.safetensors_ = std::make_shared<safetensors::SafetensorsCheckpoint>(std::move(st));
  for (const safetensors::Tensor& t : ck.safetensors_->tensors()) {
    std::optional<std::string> canonical = CanonicalNameFromHf(t.name);
    // Gemma ties the LM head to the embedding; a stored lm_head is a duplicate, not a parameter.
    if (!canonical || *canonical == "output.weight") {
      ck.other_tensor_names_.push_back(t.name);
      continue;
    }
    if (ck.FindTensor(*canonical) != nullptr) {
      return CorruptDataError(t.file + ": tensor '" + t.name + "' maps to '" + *canonical +
                              "', which another tensor already provides");
    }
    std::vector<int64_t> ne(t.shape.rbegin(), t.shape.rend());
    if (ne.empty()) ne.push_back(1);  // a scalar (layer_scalar may be stored as shape [])
    ck.tensors_.push_back(WeightTensor{*canonical, t.name, t.dtype, std::move(ne), t.data, t.n_bytes});
    ck.index_[ck.tensors_.back().name] = ck.tensors_.size() - 1;
  }
  ck.file_bytes_ = ck.safetensors_->total_file_bytes();
  ck.has_tokenizer_ = fs::exists(dir / "tokenizer.json", ec) || fs::exists(dir / "tokenizer.model", ec);
  GL_ASSIGN_OR_RETURN(ck.has_chat_template_, HfHasChatTemplate(dir));
  ck.norm_unit_offset_ = false;
  ck.BuildIndex();
  GL_RETURN_IF_ERROR(ck.ValidateTensors());
  return ck;
}

}  // namespace gemma_local
