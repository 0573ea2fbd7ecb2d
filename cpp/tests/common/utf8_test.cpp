#include "sessionstream/common/utf8.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace sessionstream {
namespace {

using namespace std::string_literals;

// A straightforward decoder, independent of the validator under test: the
// code point of the sequence at text[pos] and its length, or nullopt.
std::optional<std::pair<std::uint32_t, std::size_t>> decode_at(const std::string& text,
                                                               std::size_t pos) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char b0 = byte(pos);
  std::size_t length = 0;
  std::uint32_t cp = 0;
  if (b0 < 0x80) return std::pair{std::uint32_t{b0}, std::size_t{1}};
  if ((b0 & 0xE0) == 0xC0) {
    length = 2;
    cp = b0 & 0x1F;
  } else if ((b0 & 0xF0) == 0xE0) {
    length = 3;
    cp = b0 & 0x0F;
  } else if ((b0 & 0xF8) == 0xF0) {
    length = 4;
    cp = b0 & 0x07;
  } else {
    return std::nullopt;
  }
  if (pos + length > text.size()) return std::nullopt;
  for (std::size_t i = 1; i < length; ++i) {
    if ((byte(pos + i) & 0xC0) != 0x80) return std::nullopt;
    cp = (cp << 6) | (byte(pos + i) & 0x3F);
  }
  static constexpr std::uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[length] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return std::nullopt;
  return std::pair{cp, length};
}

std::size_t reference_first_invalid(const std::string& text) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    const auto decoded = decode_at(text, pos);
    if (!decoded) return pos;
    pos += decoded->second;
  }
  return kUtf8Valid;
}

std::string encode(std::uint32_t cp) {
  std::string out;
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
  return out;
}

TEST(Utf8, AcceptsEveryScalarValue) {
  std::string all;
  for (std::uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    all += encode(cp);
  }
  EXPECT_TRUE(is_valid_utf8(all));
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii, longer than one eight-byte word"));
}

TEST(Utf8, RejectsSurrogatesOverlongsAndOutOfRange) {
  const std::vector<std::string> invalid = {
      "\xED\xA0\x80"s,      // U+D800, a surrogate
      "\xED\xBF\xBF"s,      // U+DFFF
      "\xC0\x80"s,          // overlong NUL
      "\xC1\xBF"s,          // overlong
      "\xE0\x9F\xBF"s,      // overlong U+07FF
      "\xF0\x8F\xBF\xBF"s,  // overlong U+FFFF
      "\xF4\x90\x80\x80"s,  // U+110000
      "\xF5\x80\x80\x80"s,  // lead byte beyond the range
      "\xFF"s,              // never valid
      "\x80"s,              // a lone continuation byte
      "\xC3"s,              // cut short by the end
      "\xE2\x82"s,          // cut short by the end
      "\xF0\x9F\x98"s,      // cut short by the end
      "\xE2\x28\xA1"s,      // broken by an ASCII byte
  };
  for (const auto& text : invalid) {
    EXPECT_EQ(find_invalid_utf8(text), 0u) << testing::PrintToString(text);
  }
}

TEST(Utf8, NamesTheOffsetOfTheFirstInvalidSequence) {
  EXPECT_EQ(find_invalid_utf8("\xff"), 0u);
  EXPECT_EQ(find_invalid_utf8("abc\xff"), 3u);
  // Past the eight-byte ASCII fast path, and after multi-byte characters.
  EXPECT_EQ(find_invalid_utf8("0123456789abcdef\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80x\xC3("), 26u);
  EXPECT_EQ(find_invalid_utf8(std::string(1000, 'a') + "\xED\xA0\x80"), 1000u);
  EXPECT_EQ(find_invalid_utf8("caf\xC3\xA9"), kUtf8Valid);
}

TEST(Utf8, AgreesWithAReferenceDecoderOnEveryShortSequence) {
  // Every 1- and 2-byte string, and every 3-byte string whose bytes come from
  // the boundaries of the UTF-8 ranges, each after a prefix that walks the
  // ASCII fast path.
  std::vector<unsigned char> interesting;
  for (int b : {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF,
                0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF}) {
    interesting.push_back(static_cast<unsigned char>(b));
  }
  const std::string prefix = "ascii-prefix";
  std::size_t checked = 0;
  const auto check = [&](const std::string& tail) {
    const std::string text = prefix + tail;
    ASSERT_EQ(find_invalid_utf8(text), reference_first_invalid(text))
        << testing::PrintToString(text);
    ++checked;
  };
  for (int a = 0; a < 256; ++a) {
    check(std::string(1, static_cast<char>(a)));
    for (int b = 0; b < 256; ++b) {
      check(std::string{static_cast<char>(a), static_cast<char>(b)});
    }
  }
  for (unsigned char a : interesting) {
    for (unsigned char b : interesting) {
      for (unsigned char c : interesting) {
        for (unsigned char d : interesting) {
          check(std::string{static_cast<char>(a), static_cast<char>(b), static_cast<char>(c),
                            static_cast<char>(d)});
        }
      }
    }
  }
  EXPECT_GT(checked, 65'000u);
}

TEST(Utf8, TruncateNeverSplitsACharacter) {
  const std::string ascii63(63, 'a');
  // 63 ASCII characters and then a two-byte character: 64 bytes would split it.
  EXPECT_EQ(truncate_utf8(ascii63 + "\xC3\xA9", 64), ascii63);
  EXPECT_EQ(truncate_utf8(ascii63 + "\xC3\xA9", 65), ascii63 + "\xC3\xA9");
  EXPECT_EQ(truncate_utf8(ascii63 + "\xC3\xA9" + "b", 65), ascii63 + "\xC3\xA9");
  const std::string emoji = "\xF0\x9F\x98\x80";
  for (std::size_t cut = 0; cut < 4; ++cut) {
    EXPECT_EQ(truncate_utf8("x" + emoji, 1 + cut), "x") << cut;
  }
  EXPECT_EQ(truncate_utf8("x" + emoji, 5), "x" + emoji);
  EXPECT_EQ(truncate_utf8("\xE2\x82\xAC\xE2\x82\xAC", 4), "\xE2\x82\xAC");
  EXPECT_EQ(truncate_utf8("short", 64), "short");
  EXPECT_EQ(truncate_utf8("abc", 0), "");
  EXPECT_EQ(truncate_utf8("\xC3\xA9", 1), "");
}

TEST(Utf8, TruncateOfEveryPrefixOfValidTextIsValid) {
  const std::string text = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80z\xED\x9F\xBF\xF4\x8F\xBF\xBF";
  ASSERT_TRUE(is_valid_utf8(text));
  for (std::size_t max = 0; max <= text.size() + 1; ++max) {
    const auto cut = truncate_utf8(text, max);
    EXPECT_LE(cut.size(), max);
    EXPECT_TRUE(is_valid_utf8(cut)) << max;
    EXPECT_EQ(text.compare(0, cut.size(), cut), 0);
    // The longest such prefix: one more character would not fit.
    if (cut.size() < text.size()) {
      const auto next = decode_at(text, cut.size());
      ASSERT_TRUE(next);
      EXPECT_GT(cut.size() + next->second, max) << max;
    }
  }
}

TEST(Utf8, TruncateOfInvalidTextCutsAtTheBound) {
  // Stray continuation bytes are not a character to keep whole.
  EXPECT_EQ(truncate_utf8("ab\x80\x80\x80\x80\x80", 4), "ab\x80\x80");
  EXPECT_EQ(truncate_utf8("\xff\xff\xff", 2), "\xff\xff");
  // A valid character before stray continuation bytes is kept.
  EXPECT_EQ(truncate_utf8("\xC3\xA9\x80\x80", 3), "\xC3\xA9\x80");
}

TEST(Utf8, ExcerptIsAlwaysValidUtf8) {
  EXPECT_EQ(utf8_excerpt("caf\xC3\xA9", 80), "caf\xC3\xA9");
  EXPECT_EQ(utf8_excerpt(std::string(79, 'x') + "\xC3\xA9", 80), std::string(79, 'x'));
  // One U+FFFD per maximal invalid subpart, as Python's errors="replace".
  EXPECT_EQ(utf8_excerpt("a\xff"
                         "b",
                         80),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(utf8_excerpt("\xE2\x82(", 80), "\xEF\xBF\xBD(");
  EXPECT_EQ(utf8_excerpt("\xE0\x80", 80), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(utf8_excerpt("\xF0\x9F\x98", 80), "\xEF\xBF\xBD");
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      const std::string text{'q', static_cast<char>(a), static_cast<char>(b), '\xE2'};
      ASSERT_TRUE(is_valid_utf8(utf8_excerpt(text, 3))) << a << " " << b;
    }
  }
}

}  // namespace
}  // namespace sessionstream
