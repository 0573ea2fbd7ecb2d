#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace loadgen {

// A plain-text http:// or ws:// URL (TLS is out of scope for a loopback benchmark).
struct Url {
  enum class Scheme { http, ws };
  Scheme scheme = Scheme::http;
  std::string host;  // without brackets for IPv6 literals
  std::uint16_t port = 80;
  std::string target;       // path and query, at least "/"
  std::string host_header;  // host[:port] as sent in Host
};

// Throws std::invalid_argument naming the URL and the accepted forms.
Url parse_url(std::string_view text);

}  // namespace loadgen
