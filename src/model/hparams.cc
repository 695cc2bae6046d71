#include "model/hparams.h"

#include <string>

namespace gemma_local {

const char* ModelFamilyName(ModelFamily family) {
  switch (family) {
    case ModelFamily::kGemma3: return "gemma3";
    case ModelFamily::kGemma4: return "gemma4";
  }
  return "unknown";
}

std::vector<LayerType> PeriodicLayerTypes(int64_t n_layers, int64_t pattern) {
  std::vector<LayerType> types(static_cast<size_t>(n_layers > 0 ? n_layers : 0), LayerType::kSliding);
  for (int64_t i = 0; i < n_layers; ++i) {
    if (pattern <= 1 || (i + 1) % pattern == 0) types[i] = LayerType::kFull;
  }
  return types;
}

int64_t HParams::n_full_layers() const {
  int64_t n = 0;
  for (LayerType t : layer_types) n += t == LayerType::kFull;
  return n;
}

Status ComputeKvSources(HParams& hp, const std::string& source) {
  const int64_t n = hp.n_layers;
  if (hp.n_kv_shared_layers < 0 || hp.n_kv_shared_layers >= n) {
    return CorruptDataError(source + ": num_kv_shared_layers " + std::to_string(hp.n_kv_shared_layers) +
                            " must be in [0, " + std::to_string(n) + ")");
  }
  const int64_t first_shared = n - hp.n_kv_shared_layers;
  hp.kv_source.assign(static_cast<size_t>(n), 0);
  if (hp.has_v_proj.size() != static_cast<size_t>(n)) hp.has_v_proj.assign(static_cast<size_t>(n), true);
  for (int64_t i = 0; i < n; ++i) {
    if (i < first_shared) {
      hp.kv_source[i] = i;
      continue;
    }
    int64_t donor = -1;
    for (int64_t j = first_shared - 1; j >= 0; --j) {
      if (hp.layer_types[j] == hp.layer_types[i]) {
        donor = j;
        break;
      }
    }
    if (donor < 0) {
      return CorruptDataError(source + ": KV-shared layer " + std::to_string(i) +
                              " has no earlier KV-owning layer of the same type");
    }
    hp.kv_source[i] = donor;
    hp.has_v_proj[i] = hp.has_v_proj[donor];
  }
  return Status::Ok();
}

Status HParams::Validate(const std::string& source) const {
  auto fail = [&](const std::string& what) { return CorruptDataError(source + ": " + what); };
  auto positive = [&](const char* name, int64_t v) -> Status {
    if (v <= 0) return fail(std::string(name) + " must be positive, got " + std::to_string(v));
    return Status::Ok();
  };
  GL_RETURN_IF_ERROR(positive("n_layers", n_layers));
  GL_RETURN_IF_ERROR(positive("hidden_size", hidden_size));
  GL_RETURN_IF_ERROR(positive("n_heads", n_heads));
  GL_RETURN_IF_ERROR(positive("vocab_size", vocab_size));
  GL_RETURN_IF_ERROR(positive("context_length", context_length));
  // Generous sanity caps: far above every Gemma, far below what would overflow size math.
  constexpr int64_t kMaxDim = int64_t{1} << 24;
  if (n_layers > 4096) return fail("n_layers " + std::to_string(n_layers) + " exceeds 4096");
  if (hidden_size > kMaxDim || n_heads > kMaxDim || vocab_size > (int64_t{1} << 31)) {
    return fail("a dimension is implausibly large (hidden_size " + std::to_string(hidden_size) +
                ", n_heads " + std::to_string(n_heads) + ", vocab_size " + std::to_string(vocab_size) + ")");
  }
  if (sliding_window < 0) return fail("sliding_window must be >= 0");
  if (!(rms_norm_eps > 0.0)) return fail("rms_norm_eps must be > 0");
  const size_t n = static_cast<size_t>(n_layers);
  if (layer_types.size() != n || head_dim.size() != n || n_kv_heads.size() != n ||
      ffn_size.size() != n || has_v_proj.size() != n || kv_source.size() != n) {
    return fail("per-layer arrays must have n_layers = " + std::to_string(n_layers) + " entries");
  }
  for (size_t i = 0; i < n; ++i) {
    const std::string layer = "layer " + std::to_string(i) + ": ";
    if (head_dim[i] <= 0 || head_dim[i] > 65536) return fail(layer + "head_dim " + std::to_string(head_dim[i]) + " out of range");
    if (head_dim[i] % 2 != 0) return fail(layer + "head_dim " + std::to_string(head_dim[i]) + " must be even (RoPE pairs)");
    if (n_kv_heads[i] <= 0 || n_heads % n_kv_heads[i] != 0) {
      return fail(layer + "n_heads " + std::to_string(n_heads) + " is not a multiple of n_kv_heads " +
                  std::to_string(n_kv_heads[i]));
    }
    if (ffn_size[i] <= 0 || ffn_size[i] > kMaxDim) return fail(layer + "ffn_size " + std::to_string(ffn_size[i]) + " out of range");
    if (kv_source[i] < 0 || kv_source[i] > static_cast<int64_t>(i) ||
        layer_types[kv_source[i]] != layer_types[i]) {
      return fail(layer + "invalid KV source layer " + std::to_string(kv_source[i]));
    }
    if (kv_source[i] != static_cast<int64_t>(i) &&
        (head_dim[kv_source[i]] != head_dim[i] || n_kv_heads[kv_source[i]] != n_kv_heads[i])) {
      return fail(layer + "KV geometry differs from its donor layer " + std::to_string(kv_source[i]));
    }
  }
  if (n_experts < 0 || n_experts_used < 0 || n_experts_used > n_experts) {
    return fail("expert_used_count " + std::to_string(n_experts_used) + " must be in [0, expert_count " +
                std::to_string(n_experts) + "]");
  }
  if (n_experts > 0 && expert_ffn_size <= 0) return fail("expert ffn size must be positive");
  if (per_layer_input_size < 0) return fail("per-layer input size must be >= 0");
  return Status::Ok();
}

}  // namespace gemma_local
