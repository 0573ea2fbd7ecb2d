#include "sessionstream/common/json_check.hpp"

namespace sessionstream {

namespace {

class Checker {
 public:
  Checker(std::string_view text, std::size_t max_depth) : text_(text), max_depth_(max_depth) {}

  JsonError document() noexcept {
    skip_space();
    if (at_end()) return fail("empty text, expected a JSON value");
    if (!value(0)) return error_;
    skip_space();
    if (!at_end()) return fail("unexpected data after the JSON value");
    return {};
  }

 private:
  [[nodiscard]] bool at_end() const noexcept { return pos_ >= text_.size(); }
  [[nodiscard]] char peek() const noexcept { return at_end() ? '\0' : text_[pos_]; }

  // Records the first problem; always returns false so callers can return it.
  JsonError fail(const char* what) noexcept {
    error_ = {what, pos_};
    return error_;
  }
  bool reject(const char* what) noexcept {
    fail(what);
    return false;
  }

  void skip_space() noexcept {
    while (!at_end() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r')) {
      ++pos_;
    }
  }

  bool literal(std::string_view word) noexcept {
    if (text_.substr(pos_, word.size()) != word) return reject("invalid literal");
    pos_ += word.size();
    return true;
  }

  static bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
  static bool is_hex(char c) noexcept {
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  }

  bool digits() noexcept {
    if (!is_digit(peek())) return reject("expected a digit");
    while (is_digit(peek())) ++pos_;
    return true;
  }

  bool number() noexcept {
    if (peek() == '-') ++pos_;
    if (peek() == '0') {
      ++pos_;  // no leading zeros: "01" stops here and fails as trailing data
    } else if (is_digit(peek())) {
      while (is_digit(peek())) ++pos_;
    } else {
      return reject("unexpected character, expected a JSON value");
    }
    if (peek() == '.') {
      ++pos_;
      if (!digits()) return false;
    }
    if (peek() == 'e' || peek() == 'E') {
      ++pos_;
      if (peek() == '+' || peek() == '-') ++pos_;
      if (!digits()) return false;
    }
    return true;
  }

  bool string() noexcept {
    const std::size_t start = pos_;
    ++pos_;  // the opening quote
    while (!at_end()) {
      const auto c = static_cast<unsigned char>(text_[pos_]);
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (c < 0x20) return reject("unescaped control character in a string");
      ++pos_;
      if (c != '\\') continue;
      if (at_end()) break;
      const char escape = text_[pos_];
      if (escape == 'u') {
        ++pos_;
        for (int i = 0; i < 4; ++i, ++pos_) {
          if (!is_hex(peek())) return reject("invalid \\u escape, expected 4 hex digits");
        }
      } else if (std::string_view{"\"\\/bfnrt"}.find(escape) != std::string_view::npos) {
        ++pos_;
      } else {
        return reject("invalid escape in a string");
      }
    }
    pos_ = start;
    return reject("unterminated string");
  }

  bool value(std::size_t depth) noexcept {
    switch (peek()) {
      case '{':
      case '[':
        if (depth >= max_depth_) return reject("nesting too deep");
        return container(depth + 1, peek() == '{');
      case '"':
        return string();
      case 't':
        return literal("true");
      case 'f':
        return literal("false");
      case 'n':
        return literal("null");
      case '\0':
        if (at_end()) return reject("unexpected end, expected a JSON value");
        [[fallthrough]];
      default:
        return number();
    }
  }

  bool container(std::size_t depth, bool object) noexcept {
    const char close = object ? '}' : ']';
    ++pos_;
    skip_space();
    if (peek() == close) {
      ++pos_;
      return true;
    }
    while (true) {
      skip_space();
      if (object) {
        if (peek() != '"') {
          return reject(at_end() ? "unexpected end, expected an object key"
                                 : "expected a string as object key");
        }
        if (!string()) return false;
        skip_space();
        if (peek() != ':') return reject("expected ':' after an object key");
        ++pos_;
        skip_space();
      }
      if (!value(depth)) return false;
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == close) {
        ++pos_;
        return true;
      }
      if (at_end()) return reject(object ? "unterminated object" : "unterminated array");
      return reject(object ? "expected ',' or '}' in an object"
                           : "expected ',' or ']' in an array");
    }
  }

  std::string_view text_;
  std::size_t max_depth_;
  std::size_t pos_ = 0;
  JsonError error_;
};

}  // namespace

JsonError find_json_error(std::string_view text, std::size_t max_depth) noexcept {
  return Checker{text, max_depth}.document();
}

}  // namespace sessionstream
