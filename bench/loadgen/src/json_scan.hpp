#pragma once

#include <cstdint>
#include <string_view>

namespace loadgen::json {

// Just enough JSON to walk the members of known message shapes without building
// a document: values are returned as raw text spans, strings unescaped never.

// Returns the text after one JSON value starting at (or after whitespace before)
// p, or nullptr when the value is malformed or nested deeper than 64 levels.
const char* skip_value(const char* p, const char* end, int depth = 0);
const char* skip_ws(const char* p, const char* end);

// Calls f(key, value) for each member of the object that v holds, where key is
// the raw text between the quotes and value the raw text of the value. f
// returns false to stop early. Returns false when v is not a well-formed object.
template <class F>
bool for_each_member(std::string_view v, F&& f);

// Calls f(element) for each element of the array that v holds.
template <class F>
bool for_each_element(std::string_view v, F&& f);

// Content of a JSON string value (without quotes, escapes left as they are).
std::string_view string_content(std::string_view value);

bool to_int64(std::string_view value, std::int64_t& out);

// The fields a benchmark payload carries: "t" (publish time, us) and "seq".
struct Payload {
  bool has_t = false;
  bool has_seq = false;
  std::int64_t t = 0;
  std::int64_t seq = 0;
};
Payload scan_payload(std::string_view json_text);

// Implementation of the templates.

const char* skip_string(const char* p, const char* end);  // p at the opening quote

template <class F>
bool for_each_member(std::string_view v, F&& f) {
  const char* p = skip_ws(v.data(), v.data() + v.size());
  const char* end = v.data() + v.size();
  if (p == end || *p != '{') return false;
  p = skip_ws(p + 1, end);
  if (p < end && *p == '}') return true;
  while (p < end) {
    if (*p != '"') return false;
    const char* key_end = skip_string(p, end);
    if (!key_end) return false;
    std::string_view key(p + 1, static_cast<std::size_t>(key_end - p - 2));
    p = skip_ws(key_end, end);
    if (p == end || *p != ':') return false;
    const char* vbeg = skip_ws(p + 1, end);
    const char* vend = skip_value(vbeg, end, 1);
    if (!vend) return false;
    if (!f(key, std::string_view(vbeg, static_cast<std::size_t>(vend - vbeg)))) return true;
    p = skip_ws(vend, end);
    if (p == end) return false;
    if (*p == '}') return true;
    if (*p != ',') return false;
    p = skip_ws(p + 1, end);
  }
  return false;
}

template <class F>
bool for_each_element(std::string_view v, F&& f) {
  const char* p = skip_ws(v.data(), v.data() + v.size());
  const char* end = v.data() + v.size();
  if (p == end || *p != '[') return false;
  p = skip_ws(p + 1, end);
  if (p < end && *p == ']') return true;
  while (p < end) {
    const char* vend = skip_value(p, end, 1);
    if (!vend) return false;
    if (!f(std::string_view(p, static_cast<std::size_t>(vend - p)))) return true;
    p = skip_ws(vend, end);
    if (p == end) return false;
    if (*p == ']') return true;
    if (*p != ',') return false;
    p = skip_ws(p + 1, end);
  }
  return false;
}

}  // namespace loadgen::json
