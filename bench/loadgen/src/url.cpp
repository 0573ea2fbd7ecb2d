#include "url.hpp"

#include <charconv>
#include <stdexcept>

namespace loadgen {

Url parse_url(std::string_view text) {
  auto fail = [&](const char* why) {
    return std::invalid_argument("bad URL '" + std::string(text) + "': " + why +
                                 " (expected http://host:port/path or ws://host:port/path)");
  };
  Url url;
  std::string_view rest = text;
  if (rest.starts_with("http://")) {
    url.scheme = Url::Scheme::http;
    rest.remove_prefix(7);
  } else if (rest.starts_with("ws://")) {
    url.scheme = Url::Scheme::ws;
    rest.remove_prefix(5);
  } else {
    throw fail("unsupported scheme");
  }

  auto slash = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, slash);
  url.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (url.target.front() == '?') url.target.insert(url.target.begin(), '/');
  if (authority.empty()) throw fail("missing host");

  std::string_view port_text;
  if (authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) throw fail("unterminated IPv6 literal");
    url.host = std::string(authority.substr(1, close - 1));
    auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') throw fail("junk after IPv6 literal");
      port_text = after.substr(1);
    }
  } else {
    auto colon = authority.rfind(':');
    url.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (url.host.empty()) throw fail("missing host");
  if (!port_text.empty()) {
    unsigned p = 0;
    auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), p);
    if (ec != std::errc() || ptr != port_text.data() + port_text.size() || p == 0 || p > 65535) {
      throw fail("bad port");
    }
    url.port = static_cast<std::uint16_t>(p);
  }
  url.host_header = std::string(authority);
  return url;
}

}  // namespace loadgen
