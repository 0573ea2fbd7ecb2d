// The UTF-8 checks guard every payload and every echo of client bytes in an
// error message; compare them with a plain decoder written from RFC 3629.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "sessionstream/common/utf8.hpp"

namespace {

// Length of the valid sequence at text[i], or 0.
std::size_t sequence_length(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned lead = byte(i);
  std::size_t length = 0;
  std::uint32_t cp = 0;
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) {
    length = 2;
    cp = lead & 0x1F;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3;
    cp = lead & 0x0F;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4;
    cp = lead & 0x07;
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  for (std::size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  static constexpr std::uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[length] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return length;
}

std::size_t reference_invalid(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t n = sequence_length(text, i);
    if (n == 0) return i;
    i += n;
  }
  return sessionstream::kUtf8Valid;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sessionstream;
  if (size == 0) return 0;
  const std::size_t max_bytes = data[0];
  const std::string_view text{reinterpret_cast<const char*>(data) + 1, size - 1};

  const std::size_t invalid = find_invalid_utf8(text);
  if (invalid != reference_invalid(text)) std::abort();

  const std::string_view cut = truncate_utf8(text, max_bytes);
  if (cut.data() != text.data() || cut.size() > max_bytes || cut.size() > text.size()) std::abort();
  if (invalid == kUtf8Valid) {
    if (!is_valid_utf8(cut)) std::abort();
    // Only a character that does not fit is dropped.
    if (cut.size() < text.size() && cut.size() + sequence_length(text, cut.size()) <= max_bytes) {
      std::abort();
    }
  }

  const std::string excerpt = utf8_excerpt(text, max_bytes);
  if (!is_valid_utf8(excerpt) || excerpt.size() > 3 * max_bytes) std::abort();
  if (invalid == kUtf8Valid && excerpt != cut) std::abort();
  return 0;
}
