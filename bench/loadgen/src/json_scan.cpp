#include "json_scan.hpp"

#include <charconv>
#include <cstring>

namespace loadgen::json {

namespace {
bool ends_scalar(char c) {
  switch (c) {
    case ',':
    case ']':
    case '}':
    case ' ':
    case '\t':
    case '\r':
    case '\n':
      return true;
    default:
      return false;
  }
}
}  // namespace

const char* skip_ws(const char* p, const char* end) {
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) ++p;
  return p;
}

const char* skip_string(const char* p, const char* end) {
  const char* from = p + 1;
  for (;;) {
    auto q = static_cast<const char*>(std::memchr(from, '"', static_cast<std::size_t>(end - from)));
    if (!q) return nullptr;
    // An odd run of backslashes escapes the quote.
    const char* b = q;
    while (b > from && b[-1] == '\\') --b;
    if (((q - b) & 1) == 0) return q + 1;
    from = q + 1;
  }
}

const char* skip_value(const char* p, const char* end, int depth) {
  if (depth > 64) return nullptr;
  p = skip_ws(p, end);
  if (p == end) return nullptr;
  switch (*p) {
    case '"':
      return skip_string(p, end);
    case '{':
    case '[': {
      const char close = *p == '{' ? '}' : ']';
      const bool object = *p == '{';
      p = skip_ws(p + 1, end);
      if (p < end && *p == close) return p + 1;
      while (p < end) {
        if (object) {
          if (*p != '"') return nullptr;
          p = skip_string(p, end);
          if (!p) return nullptr;
          p = skip_ws(p, end);
          if (p == end || *p != ':') return nullptr;
          ++p;
        }
        p = skip_value(p, end, depth + 1);
        if (!p) return nullptr;
        p = skip_ws(p, end);
        if (p == end) return nullptr;
        if (*p == close) return p + 1;
        if (*p != ',') return nullptr;
        p = skip_ws(p + 1, end);
      }
      return nullptr;
    }
    default: {
      const char* start = p;
      while (p < end && !ends_scalar(*p)) {
        if (*p == '{' || *p == '[' || *p == '"' || *p == ':') return nullptr;
        ++p;
      }
      return p == start ? nullptr : p;
    }
  }
}

std::string_view string_content(std::string_view value) {
  if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
    return value.substr(1, value.size() - 2);
  }
  return {};
}

bool to_int64(std::string_view value, std::int64_t& out) {
  auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), out);
  return ec == std::errc() && ptr == value.data() + value.size();
}

Payload scan_payload(std::string_view json_text) {
  Payload out;
  for_each_member(json_text, [&](std::string_view key, std::string_view value) {
    if (key == "t") {
      out.has_t = to_int64(value, out.t);
    } else if (key == "seq") {
      out.has_seq = to_int64(value, out.seq);
    }
    return !(out.has_t && out.has_seq);
  });
  return out;
}

}  // namespace loadgen::json
