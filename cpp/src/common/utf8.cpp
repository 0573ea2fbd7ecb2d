#include "sessionstream/common/utf8.hpp"

#include <cstdint>
#include <cstring>

namespace sessionstream {

namespace {

struct Sequence {
  std::size_t length;  // bytes of the sequence, or of its invalid maximal subpart (>= 1)
  bool valid;
};

// The sequence starting at text[0] (text is not empty), by Table 3-7 of the
// Unicode Standard: the second byte's range depends on the lead byte, which
// excludes overlong forms, surrogates and code points above U+10FFFF.
Sequence sequence_at(const unsigned char* text, std::size_t size) noexcept {
  const unsigned char lead = text[0];
  if (lead < 0x80) return {1, true};
  std::size_t continuation = 0;
  unsigned char low = 0x80;
  unsigned char high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    continuation = 1;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    continuation = 2;
    if (lead == 0xE0) low = 0xA0;   // overlong below U+0800
    if (lead == 0xED) high = 0x9F;  // surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    continuation = 3;
    if (lead == 0xF0) low = 0x90;   // overlong below U+10000
    if (lead == 0xF4) high = 0x8F;  // above U+10FFFF
  } else {
    return {1, false};  // a continuation byte, C0, C1 or F5-FF
  }
  for (std::size_t i = 1; i <= continuation; ++i) {
    if (i >= size || text[i] < low || text[i] > high) return {i, false};
    low = 0x80;
    high = 0xBF;
  }
  return {continuation + 1, true};
}

constexpr std::uint64_t kHighBits = 0x8080808080808080ULL;

}  // namespace

std::size_t find_invalid_utf8(std::string_view text) noexcept {
  const auto* const bytes = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t size = text.size();
  std::size_t pos = 0;
  while (pos < size) {
    // ASCII runs, the common case, eight bytes at a time.
    while (pos + 8 <= size) {
      std::uint64_t word = 0;
      std::memcpy(&word, bytes + pos, sizeof word);
      if ((word & kHighBits) != 0) break;
      pos += 8;
    }
    while (pos < size && bytes[pos] < 0x80) ++pos;
    if (pos == size) break;
    const Sequence s = sequence_at(bytes + pos, size - pos);
    if (!s.valid) return pos;
    pos += s.length;
  }
  return kUtf8Valid;
}

std::string_view truncate_utf8(std::string_view text, std::size_t max_bytes) noexcept {
  if (text.size() <= max_bytes) return text;
  const auto* const bytes = reinterpret_cast<const unsigned char*>(text.data());
  // text[max_bytes] is the first byte dropped. If it continues a sequence
  // that starts at most three bytes earlier, that whole sequence goes.
  const auto is_continuation = [](unsigned char b) { return (b & 0xC0) == 0x80; };
  std::size_t start = max_bytes;
  while (start > 0 && max_bytes - start < 3 && is_continuation(bytes[start])) --start;
  if (start < max_bytes && !is_continuation(bytes[start])) {
    const Sequence s = sequence_at(bytes + start, text.size() - start);
    // Only a valid sequence that crosses the cut is dropped; anything else
    // (stray continuation bytes, a broken sequence) is cut at max_bytes.
    if (s.valid && start + s.length > max_bytes) return text.substr(0, start);
  }
  return text.substr(0, max_bytes);
}

std::string utf8_excerpt(std::string_view text, std::size_t max_bytes) {
  const std::string_view kept = truncate_utf8(text, max_bytes);
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD
  std::string out;
  out.reserve(kept.size());
  const auto* const bytes = reinterpret_cast<const unsigned char*>(kept.data());
  std::size_t pos = 0;
  while (pos < kept.size()) {
    const std::size_t bad = find_invalid_utf8(kept.substr(pos));
    if (bad == kUtf8Valid) {
      out.append(kept.substr(pos));
      break;
    }
    out.append(kept.substr(pos, bad));
    out.append(kReplacement);
    // One replacement per maximal subpart, as decoders with "replace" do.
    pos += bad + sequence_at(bytes + pos + bad, kept.size() - pos - bad).length;
  }
  return out;
}

}  // namespace sessionstream
