#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_map>

namespace gemma_local {

Status SamplingParams::Validate() const {
  auto bad = [](const char* field, const std::string& why) {
    return InvalidArgumentError(std::string("sampling parameter ") + field + " " + why);
  };
  if (!(temperature >= 0.0f) || !std::isfinite(temperature)) return bad("temperature", "must be >= 0");
  if (top_k < 0) return bad("top_k", "must be >= 0");
  if (!(top_p > 0.0f && top_p <= 1.0f)) return bad("top_p", "must be in (0, 1]");
  if (!(min_p >= 0.0f && min_p <= 1.0f)) return bad("min_p", "must be in [0, 1]");
  if (!(repetition_penalty > 0.0f) || !std::isfinite(repetition_penalty)) return bad("repetition_penalty", "must be > 0");
  if (!std::isfinite(presence_penalty) || std::fabs(presence_penalty) > 2.0f) return bad("presence_penalty", "must be in [-2, 2]");
  if (!std::isfinite(frequency_penalty) || std::fabs(frequency_penalty) > 2.0f) return bad("frequency_penalty", "must be in [-2, 2]");
  return Status::Ok();
}

namespace {

uint64_t SplitMix(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

int32_t Argmax(const std::vector<float>& v) {
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());  // first max wins
}

}  // namespace

Sampler::Sampler(const SamplingParams& params) : params_(params) {
  uint64_t s = params.seed;
  for (uint64_t& x : state_) x = SplitMix(s);
}

double Sampler::NextUniform() {
  const uint64_t result = Rotl(state_[1] * 5, 7) * 9;
  const uint64_t t = state_[1] << 17;
  state_[2] ^= state_[0];
  state_[3] ^= state_[1];
  state_[1] ^= state_[2];
  state_[0] ^= state_[3];
  state_[2] ^= t;
  state_[3] = Rotl(state_[3], 45);
  return static_cast<double>(result >> 11) * (1.0 / 9007199254740992.0);
}

int32_t Sampler::Next(std::vector<float>& logits, const std::vector<int32_t>& context, size_t n_generated) {
  const int64_t V = static_cast<int64_t>(logits.size());
  // Repetition penalty (HF): every distinct token in the context, once.
  if (params_.repetition_penalty != 1.0f) {
    std::vector<bool> seen(static_cast<size_t>(V), false);
    for (int32_t t : context) {
      if (t < 0 || t >= V || seen[t]) continue;
      seen[t] = true;
      float& l = logits[t];
      l = l < 0 ? l * params_.repetition_penalty : l / params_.repetition_penalty;
    }
  }
  if (params_.presence_penalty != 0.0f || params_.frequency_penalty != 0.0f) {
    std::unordered_map<int32_t, int> counts;
    for (size_t i = context.size() - std::min(n_generated, context.size()); i < context.size(); ++i) ++counts[context[i]];
    for (const auto& [t, c] : counts) {
      if (t >= 0 && t < V) logits[t] -= params_.presence_penalty + params_.frequency_penalty * static_cast<float>(c);
    }
  }
  if (params_.temperature == 0.0f) return Argmax(logits);

  for (float& l : logits) l /= params_.temperature;
  // Candidates sorted by logit, best first (ties: lower id first).
  std::vector<int32_t> ids(static_cast<size_t>(V));
  std::iota(ids.begin(), ids.end(), 0);
  auto better = [&](int32_t a, int32_t b) { return logits[a] != logits[b] ? logits[a] > logits[b] : a < b; };
  size_t keep = ids.size();
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < keep) {
    // HF keeps every logit >= the k-th largest (ties at the boundary survive).
    std::nth_element(ids.begin(), ids.begin() + (params_.top_k - 1), ids.end(), better);
    const float kth = logits[ids[params_.top_k - 1]];
    keep = static_cast<size_t>(std::partition(ids.begin(), ids.end(), [&](int32_t i) { return logits[i] >= kth; }) - ids.begin());
  }
  std::sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(keep), better);
  ids.resize(keep);
  // Probabilities of the survivors.
  std::vector<double> p(ids.size());
  const double mx = logits[ids[0]];
  double sum = 0;
  for (size_t i = 0; i < ids.size(); ++i) sum += p[i] = std::exp(logits[ids[i]] - mx);
  for (double& x : p) x /= sum;
  if (params_.top_p < 1.0f) {
    // Smallest prefix whose mass reaches top_p (HF removes tokens whose ascending cumulative
    // mass is <= 1 - top_p; at least one token stays).
    double cum = 0;
    size_t n = 0;
    while (n < p.size()) {
      cum += p[n++];
      if (cum >= params_.top_p) break;
    }
    ids.resize(n);
    p.resize(n);
  }
  if (params_.min_p > 0.0f) {
    const double floor = params_.min_p * p[0];
    size_t n = 1;
    while (n < p.size() && p[n] >= floor) ++n;
    ids.resize(n);
    p.resize(n);
  }
  double total = std::accumulate(p.begin(), p.end(), 0.0);
  double r = NextUniform() * total;
  for (size_t i = 0; i < p.size(); ++i) {
    r -= p[i];
    if (r < 0) return ids[i];
  }
  return ids.back();
}

}  // namespace gemma_local
