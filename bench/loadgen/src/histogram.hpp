#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>

namespace loadgen {

// Log-bucketed histogram in the style of HdrHistogram: every power of two is
// split into 128 linear sub-buckets, so a reported value is at most 1/128
// (0.8%) above the true one, over the whole 64-bit range, in fixed memory.
class LogHistogram {
 public:
  void record(std::uint64_t v) {
    ++counts_[index_of(v)];
    ++total_;
    sum_ += static_cast<double>(v);
    max_ = std::max(max_, v);
    min_ = std::min(min_, v);
  }

  std::uint64_t count() const { return total_; }
  std::uint64_t max() const { return total_ ? max_ : 0; }
  std::uint64_t min() const { return total_ ? min_ : 0; }
  double mean() const { return total_ ? sum_ / static_cast<double>(total_) : 0.0; }

  // Smallest recorded bucket bound such that at least q of the samples are <= it
  // (the highest value equivalent to the bucket, clamped to the exact max).
  std::uint64_t quantile(double q) const {
    if (total_ == 0) return 0;
    q = std::clamp(q, 0.0, 1.0);
    auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(total_)));
    rank = std::clamp<std::uint64_t>(rank, 1, total_);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(upper_bound_of(i), max_);
    }
    return max_;
  }

  static std::size_t index_of(std::uint64_t v) {
    if (v < kSubCount) return static_cast<std::size_t>(v);
    int shift = std::bit_width(v) - kSubBits;  // >= 1 here
    return static_cast<std::size_t>(shift) * kHalf + static_cast<std::size_t>(v >> shift);
  }

  static std::uint64_t upper_bound_of(std::size_t index) {
    if (index < kSubCount) return index;
    std::size_t shift = index / kHalf - 1;
    std::uint64_t sub = index - shift * kHalf;
    return ((sub + 1) << shift) - 1;
  }

 private:
  static constexpr int kSubBits = 8;
  static constexpr std::uint64_t kSubCount = 1u << kSubBits;
  static constexpr std::uint64_t kHalf = kSubCount / 2;
  static constexpr std::size_t kBuckets = (64 - kSubBits + 1) * kHalf + kHalf;

  std::array<std::uint64_t, kBuckets> counts_{};
  std::uint64_t total_ = 0;
  double sum_ = 0;
  std::uint64_t max_ = 0;
  std::uint64_t min_ = UINT64_MAX;
};

}  // namespace loadgen
