#include "model/quantize.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <memory>

#include "core/thread_pool.h"
#include "formats/gguf.h"
#include "model/tensor_table.h"
#include "ops/reference/quant_ref.h"
#include "ops/reference/ref_ops.h"

namespace gemma_local {
namespace {

struct MixInfo {
  QuantMix mix;
  const char* name;
  DType base;          // the type most quantized tensors get
  uint32_t file_type;  // llama.cpp's general.file_type (LLAMA_FTYPE_*)
};

constexpr MixInfo kMixes[] = {
    {QuantMix::kF32, "f32", DType::kF32, 0},        {QuantMix::kF16, "f16", DType::kF16, 1},
    {QuantMix::kBF16, "bf16", DType::kBF16, 32},    {QuantMix::kQ8_0, "q8_0", DType::kQ8_0, 7},
    {QuantMix::kQ4_0, "q4_0", DType::kQ4_0, 2},     {QuantMix::kQ4_1, "q4_1", DType::kQ4_1, 3},
    {QuantMix::kQ5_0, "q5_0", DType::kQ5_0, 8},     {QuantMix::kQ5_1, "q5_1", DType::kQ5_1, 9},
    {QuantMix::kQ2_K, "q2_k", DType::kQ2_K, 10},    {QuantMix::kQ3_K_M, "q3_k_m", DType::kQ3_K, 12},
    {QuantMix::kQ4_K_S, "q4_k_s", DType::kQ4_K, 14}, {QuantMix::kQ4_K_M, "q4_k_m", DType::kQ4_K, 15},
    {QuantMix::kQ5_K_S, "q5_k_s", DType::kQ5_K, 16}, {QuantMix::kQ5_K_M, "q5_k_m", DType::kQ5_K, 17},
    {QuantMix::kQ6_K, "q6_k", DType::kQ6_K, 18},
};

const MixInfo& Info(QuantMix mix) {
  for (const MixInfo& m : kMixes) {
    if (m.mix == mix) return m;
  }
  return kMixes[0];
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// llama.cpp's "use more bits" layer pattern for the _M mixes: the first and last eighth of the
// layers and every third layer in between.
bool UseMoreBits(int64_t i, int64_t n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

// Layer index of "blk.N.*", or -1.
int64_t LayerOf(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return -1;
  int64_t v = 0;
  size_t i = 4;
  if (i >= name.size() || !std::isdigit(static_cast<unsigned char>(name[i]))) return -1;
  for (; i < name.size() && std::isdigit(static_cast<unsigned char>(name[i])); ++i) v = v * 10 + (name[i] - '0');
  return v;
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A row of `cols` elements that the type cannot hold in whole blocks falls back like llama.cpp.
DType FallBack(DType t, int64_t cols) {
  if (cols % Traits(t).block_elems == 0) return t;
  DType f = DType::kF16;
  switch (t) {
    case DType::kQ2_K: case DType::kQ3_K: f = DType::kQ4_0; break;
    case DType::kQ4_K: f = DType::kQ5_0; break;
    case DType::kQ5_K: f = DType::kQ5_1; break;
    case DType::kQ6_K: f = DType::kQ8_0; break;
    default: break;
  }
  return cols % Traits(f).block_elems == 0 ? f : DType::kF16;
}

std::map<std::string, TensorRole> Roles(const HParams& hp) {
  std::map<std::string, TensorRole> roles;
  for (const ExpectedTensor& e : ExpectedDecoderTensors(hp)) roles[e.name] = e.role;
  return roles;
}

DType TypeFor(const HParams& hp, const std::map<std::string, TensorRole>& roles, bool has_output,
              const WeightTensor& t, QuantMix mix) {
  auto it = roles.find(t.name);
  const bool quantizable = it != roles.end() &&
                           (it->second == TensorRole::kMatrix || it->second == TensorRole::kEmbedding) &&
                           t.ne.size() >= 2 && t.name.find("ffn_gate_inp") == std::string::npos;
  if (!quantizable) return t.dtype;
  const MixInfo& info = Info(mix);
  DType type = info.base;
  const int64_t cols = t.ne[0];
  if (Traits(type).block_elems == 1) return type;  // f32 / f16 / bf16: every matrix converts
  const bool is_lm_head = t.name == "output.weight" || (!has_output && t.name == "token_embd.weight");
  if (is_lm_head) {
    // The LM head: q8_0 stays q8_0, every other mix uses q6_K (q8_0 when rows are not 256-wide).
    if (cols % 256 != 0) return DType::kQ8_0;
    return type == DType::kQ8_0 ? DType::kQ8_0 : DType::kQ6_K;
  }
  const int64_t layer = LayerOf(t.name);
  const bool attn_v = EndsWith(t.name, "attn_v.weight");
  const bool ffn_down = t.name.find("ffn_down") != std::string::npos;
  const bool more = layer >= 0 && UseMoreBits(layer, hp.n_layers);
  switch (mix) {
    case QuantMix::kQ4_K_M:
    case QuantMix::kQ5_K_M:
      if ((attn_v || ffn_down) && more) type = DType::kQ6_K;
      break;
    case QuantMix::kQ4_K_S:
      if (ffn_down && layer >= 0 && layer < hp.n_layers / 8) type = DType::kQ5_K;
      if (attn_v && layer >= 0 && layer < 4) type = DType::kQ5_K;
      break;
    case QuantMix::kQ3_K_M:
      if (attn_v) type = layer >= 0 && layer < 2 ? DType::kQ5_K : DType::kQ4_K;
      if (ffn_down) type = layer >= 0 && layer < hp.n_layers / 16 ? DType::kQ5_K : DType::kQ4_K;
      if (EndsWith(t.name, "attn_output.weight")) type = DType::kQ4_K;
      break;
    case QuantMix::kQ2_K:
      if (attn_v || ffn_down || EndsWith(t.name, "attn_output.weight")) type = DType::kQ3_K;
      break;
    default:
      break;
  }
  return FallBack(type, cols);
}

// Quantizes every row of `t` into `dtype` (rows in parallel; each row is independent).
Result<std::shared_ptr<std::vector<uint8_t>>> QuantizeTensor(const WeightTensor& t, DType dtype, ThreadPool& pool,
                                                             const std::string& file) {
  const int64_t cols = t.ne[0];
  const int64_t rows = static_cast<int64_t>(t.n_elements()) / cols;
  GL_ASSIGN_OR_RETURN(uint64_t out_row_bytes, DTypeByteSize(dtype, static_cast<uint64_t>(cols)));
  if (!ref::CanDequantize(t.dtype)) {
    return UnsupportedError(file + ": tensor '" + t.name + "' is " + DTypeName(t.dtype) +
                            ", which cannot be re-quantized");
  }
  auto out = std::make_shared<std::vector<uint8_t>>(static_cast<size_t>(out_row_bytes * rows));
  const ref::MatrixView src{t.dtype, t.data, rows, cols};
  pool.ParallelFor(rows, std::max<int64_t>(1, 16384 / cols), [&](int64_t r0, int64_t r1) {
    std::vector<float> row(static_cast<size_t>(cols));
    for (int64_t r = r0; r < r1; ++r) {
      ref::DequantizeRow(src, r, row.data());
      ref::QuantizeBlocks(dtype, row.data(), cols, out->data() + static_cast<uint64_t>(r) * out_row_bytes);
    }
  });
  return out;
}

}  // namespace

Result<QuantMix> ParseQuantMix(const std::string& name) {
  std::string n = Lower(name);
  if (n == "q4_k" || n == "4bit" || n == "int4") n = "q4_k_m";
  if (n == "q5_k") n = "q5_k_m";
  if (n == "q3_k") n = "q3_k_m";
  if (n == "8bit" || n == "int8") n = "q8_0";
  for (const MixInfo& m : kMixes) {
    if (n == m.name) return m.mix;
  }
  std::string all;
  for (const std::string& s : QuantMixNames()) all += (all.empty() ? "" : ", ") + s;
  return InvalidArgumentError("unknown quantization type '" + name + "' (accepted: " + all +
                              "; aliases q4_k = 4bit = q4_k_m, 8bit = q8_0)");
}

std::string QuantMixName(QuantMix mix) { return Info(mix).name; }

std::vector<std::string> QuantMixNames() {
  std::vector<std::string> out;
  for (const MixInfo& m : kMixes) out.push_back(m.name);
  return out;
}

DType QuantizedTensorType(const Checkpoint& ck, const WeightTensor& t, QuantMix mix) {
  return TypeFor(ck.hparams(), Roles(ck.hparams()), ck.FindTensor("output.weight") != nullptr, t, mix);
}

Status QuantizeCheckpointInMemory(Checkpoint& ck, QuantMix mix, int threads) {
  ThreadPool pool(threads);
  const auto roles = Roles(ck.hparams());
  const bool has_output = ck.FindTensor("output.weight") != nullptr;
  const std::vector<WeightTensor> tensors = ck.tensors();  // a copy: ReplaceTensorData edits the list
  for (const WeightTensor& t : tensors) {
    const DType want = TypeFor(ck.hparams(), roles, has_output, t, mix);
    if (want == t.dtype) continue;
    GL_ASSIGN_OR_RETURN(auto data, QuantizeTensor(t, want, pool, ck.path()));
    GL_RETURN_IF_ERROR(ck.ReplaceTensorData(t.name, want, std::move(data)));
  }
  return Status::Ok();
}

Status WriteQuantizedGguf(const Checkpoint& ck, QuantMix mix, const std::string& out_path, int threads) {
  if (ck.gguf() == nullptr) {
    return UnsupportedError(ck.path() + ": quantize reads GGUF files; a Hugging Face checkpoint can be "
                            "quantized at load time instead (run/chat/bench --quantize TYPE)");
  }
  ThreadPool pool(threads);
  const auto roles = Roles(ck.hparams());
  const bool has_output = ck.FindTensor("output.weight") != nullptr;
  gguf::GgufWriter writer;
  for (const gguf::KeyValue& kv : ck.gguf()->metadata()) {
    if (kv.key == "general.alignment") continue;
    writer.Set(kv.key, kv.value);
  }
  writer.Set("general.file_type", gguf::Value::U32(Info(mix).file_type));
  writer.Set("general.quantized_by", gguf::Value::String("gemma-local"));
  // Every tensor of the file in its order; decoder tensors by their canonical names' policy,
  // anything else (e.g. a vision tower) copied unchanged.
  std::map<std::string, const WeightTensor*> by_file_name;
  for (const WeightTensor& t : ck.tensors()) by_file_name[t.file_name] = &t;
  for (const gguf::TensorInfo& info : ck.gguf()->tensors()) {
    auto it = by_file_name.find(info.name);
    DType want = info.dtype;
    if (it != by_file_name.end()) want = TypeFor(ck.hparams(), roles, has_output, *it->second, mix);
    if (want == info.dtype) {
      GL_RETURN_IF_ERROR(writer.AddTensor(info.name, info.dtype, info.ne,
                                          std::vector<uint8_t>(info.data, info.data + info.n_bytes)));
      continue;
    }
    GL_ASSIGN_OR_RETURN(auto data, QuantizeTensor(*it->second, want, pool, ck.path()));
    GL_RETURN_IF_ERROR(writer.AddTensor(info.name, want, info.ne, std::move(*data)));
  }
  return writer.WriteFile(out_path, ck.gguf()->alignment());
}

}  // namespace gemma_local
