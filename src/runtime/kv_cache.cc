#include "runtime/kv_cache.h"

#include <algorithm>
#include <cstring>

namespace gemma_local {

SimpleKvCache::SimpleKvCache(const HParams& hp, int32_t n_seq, int64_t max_context, int64_t max_batch)
    : layers_(static_cast<size_t>(hp.n_layers)), length_(static_cast<size_t>(n_seq), 0), max_context_(max_context) {
  for (int64_t l = 0; l < hp.n_layers; ++l) {
    if (!hp.owns_kv(l)) continue;
    LayerStore& s = layers_[l];
    s.dim = hp.n_kv_heads[l] * hp.head_dim[l];
    s.ring = hp.is_sliding(l) && hp.sliding_window > 0 && hp.sliding_window + max_batch < max_context;
    s.capacity = s.ring ? hp.sliding_window + max_batch : max_context;
    s.k.resize(static_cast<size_t>(n_seq));
    s.v.resize(static_cast<size_t>(n_seq));
  }
}

Status SimpleKvCache::Write(int64_t layer, int32_t seq, int64_t pos, const float* k, const float* v) {
  if (seq < 0 || seq >= static_cast<int32_t>(length_.size())) {
    return InvalidArgumentError("KV cache: sequence " + std::to_string(seq) + " out of range");
  }
  if (pos >= max_context_) {
    return ResourceExhaustedError("KV cache: position " + std::to_string(pos) + " exceeds the context size " +
                                  std::to_string(max_context_));
  }
  LayerStore& s = layers_[layer];
  if (s.dim == 0) return InternalError("KV cache: layer " + std::to_string(layer) + " has no storage");
  std::vector<float>& ks = s.k[seq];
  std::vector<float>& vs = s.v[seq];
  const int64_t slot = s.ring ? pos % s.capacity : pos;
  const size_t need = static_cast<size_t>((slot + 1) * s.dim);
  if (ks.size() < need) {
    // Grow geometrically up to the layer's capacity, so long prompts do not reallocate per token.
    const size_t cap = static_cast<size_t>(s.capacity * s.dim);
    const size_t grown = std::min(cap, std::max(need, ks.size() * 2));
    ks.resize(grown);
    vs.resize(grown);
  }
  std::memcpy(ks.data() + slot * s.dim, k, static_cast<size_t>(s.dim) * 4);
  std::memcpy(vs.data() + slot * s.dim, v, static_cast<size_t>(s.dim) * 4);
  length_[seq] = std::max(length_[seq], pos + 1);
  return Status::Ok();
}

const float* SimpleKvCache::Slot(const LayerStore& s, const std::vector<float>& data, int32_t seq, int64_t pos) const {
  if (pos < 0 || pos >= length_[seq]) return nullptr;
  if (s.ring && pos < length_[seq] - s.capacity) return nullptr;  // overwritten
  const int64_t slot = s.ring ? pos % s.capacity : pos;
  return data.data() + slot * s.dim;
}

const float* SimpleKvCache::K(int64_t layer, int32_t seq, int64_t pos) const {
  const LayerStore& s = layers_[layer];
  return s.dim == 0 ? nullptr : Slot(s, s.k[seq], seq, pos);
}

const float* SimpleKvCache::V(int64_t layer, int32_t seq, int64_t pos) const {
  const LayerStore& s = layers_[layer];
  return s.dim == 0 ? nullptr : Slot(s, s.v[seq], seq, pos);
}

int64_t SimpleKvCache::Length(int32_t seq) const {
  return seq >= 0 && seq < static_cast<int32_t>(length_.size()) ? length_[seq] : 0;
}

void SimpleKvCache::Clear(int32_t seq) {
  if (seq < 0 || seq >= static_cast<int32_t>(length_.size())) return;
  length_[seq] = 0;
  for (LayerStore& s : layers_) {
    if (s.dim == 0) continue;
    std::vector<float>().swap(s.k[seq]);
    std::vector<float>().swap(s.v[seq]);
  }
}

}  // namespace gemma_local
