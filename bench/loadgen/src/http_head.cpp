#include "http_head.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace loadgen {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool icontains(std::string_view hay, std::string_view needle) {
  if (needle.size() > hay.size()) return false;
  for (std::size_t i = 0; i + needle.size() <= hay.size(); ++i) {
    if (iequals(hay.substr(i, needle.size()), needle)) return true;
  }
  return false;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

}  // namespace

std::size_t find_head_end(std::string_view buffered) {
  auto crlf = buffered.find("\r\n\r\n");
  auto lf = buffered.find("\n\n");  // tolerated bare-LF heads
  if (crlf == std::string_view::npos && lf == std::string_view::npos) return std::string_view::npos;
  if (lf == std::string_view::npos || (crlf != std::string_view::npos && crlf < lf))
    return crlf + 4;
  return lf + 2;
}

std::optional<ResponseHead> parse_response_head(std::string_view head) {
  ResponseHead out;
  auto eol = head.find('\n');
  if (eol == std::string_view::npos) return std::nullopt;
  std::string_view status_line = trim(head.substr(0, eol));
  if (!status_line.starts_with("HTTP/1.")) return std::nullopt;
  auto sp = status_line.find(' ');
  if (sp == std::string_view::npos || status_line.size() < sp + 4) return std::nullopt;
  auto code = status_line.substr(sp + 1, 3);
  auto [ptr, ec] = std::from_chars(code.data(), code.data() + 3, out.status);
  if (ec != std::errc() || ptr != code.data() + 3) return std::nullopt;

  bool chunked = false;
  std::optional<std::uint64_t> length;
  head.remove_prefix(eol + 1);
  while (!head.empty()) {
    eol = head.find('\n');
    std::string_view line = head.substr(0, eol);
    head.remove_prefix(eol == std::string_view::npos ? head.size() : eol + 1);
    line = trim(line);
    if (line.empty()) break;
    auto colon = line.find(':');
    if (colon == std::string_view::npos) return std::nullopt;
    auto name = trim(line.substr(0, colon));
    auto value = trim(line.substr(colon + 1));
    if (iequals(name, "transfer-encoding")) {
      chunked = chunked || icontains(value, "chunked");
    } else if (iequals(name, "content-length")) {
      std::uint64_t n = 0;
      auto r = std::from_chars(value.data(), value.data() + value.size(), n);
      if (r.ec != std::errc() || r.ptr != value.data() + value.size()) return std::nullopt;
      length = n;
    } else if (iequals(name, "content-type")) {
      out.content_type = value;
    }
  }
  if (chunked) {
    out.body = ResponseHead::Body::chunked;
  } else if (length) {
    out.body = ResponseHead::Body::length;
    out.content_length = *length;
  }
  return out;
}

}  // namespace loadgen
