#include <charconv>
#include <string>

#include "sessionstream/common/errors.hpp"
#include "sessionstream/common/utf8.hpp"
#include "sessionstream/sources/redis/config.hpp"

namespace sessionstream::redis {

namespace {

constexpr std::string_view kScheme = "redis://";
constexpr std::string_view kTlsScheme = "rediss://";

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// what names the part ("username", "password") so the message can say which
// one is malformed without quoting it.
std::string percent_decoded(std::string_view text, const char* what) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    const bool complete = i + 2 < text.size();
    const int high = complete ? hex_value(text[i + 1]) : -1;
    const int low = complete ? hex_value(text[i + 2]) : -1;
    if (high < 0 || low < 0) {
      throw InvalidArgument(std::string{"Redis URL: the "} + what +
                            " has a malformed percent-escape: use %XX with two hex digits");
    }
    out.push_back(static_cast<char>(high * 16 + low));
    i += 2;
  }
  return out;
}

bool all_digits(std::string_view text) noexcept {
  if (text.empty()) return false;
  for (const char c : text) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

}  // namespace

std::string Endpoint::redacted() const {
  std::string out{kScheme};
  if (!username.empty() || !password.empty()) {
    out += username;
    if (!password.empty()) out += ":***";
    out += '@';
  }
  const bool ipv6 = host.find(':') != std::string::npos;
  if (ipv6) out += '[';
  out += host;
  if (ipv6) out += ']';
  out += ':' + std::to_string(port) + '/' + std::to_string(database);
  return out;
}

Endpoint parse_url(std::string_view url) {
  if (url.starts_with(kTlsScheme)) {
    throw InvalidArgument(
        "rediss:// (TLS) is not supported by this build: it links hiredis 0.14 without TLS; "
        "reach Redis over a private network or a TLS tunnel (stunnel) and use redis://");
  }
  if (!url.starts_with(kScheme)) {
    // Only the scheme is quoted: the rest may hold a password.
    const auto colon = url.find(':');
    const std::string_view scheme = colon == std::string_view::npos ? url : url.substr(0, colon);
    throw InvalidArgument("Redis URL scheme '" + utf8_excerpt(scheme, 20) +
                          "' is not supported: use redis://[[user]:password@]host[:port][/db]");
  }
  std::string_view rest = url.substr(kScheme.size());
  if (rest.find_first_of("?#") != std::string_view::npos) {
    throw InvalidArgument(
        "Redis URL: query strings and fragments are not supported; use "
        "redis://[[user]:password@]host[:port][/db]");
  }

  Endpoint endpoint;
  // The userinfo ends at the last '@': a password may itself hold an
  // unescaped '@', a host never does.
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
    const std::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    const auto colon = userinfo.find(':');
    if (colon == std::string_view::npos) {
      // "redis://secret@host": the single part is a password, as redis-cli reads it.
      endpoint.password = percent_decoded(userinfo, "password");
    } else {
      endpoint.username = percent_decoded(userinfo.substr(0, colon), "username");
      endpoint.password = percent_decoded(userinfo.substr(colon + 1), "password");
    }
    if (endpoint.password.empty() && !endpoint.username.empty()) {
      throw InvalidArgument("Redis URL: user '" + utf8_excerpt(endpoint.username, 40) +
                            "' needs a password (redis://user:password@host)");
    }
  }

  std::string_view authority = rest;
  std::string_view path;
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
    authority = rest.substr(0, slash);
    path = rest.substr(slash + 1);
  }

  std::string_view host = authority;
  std::string_view port_text;
  if (authority.starts_with('[')) {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) {
      throw InvalidArgument("Redis URL: IPv6 address without its closing ']' (use [::1]:6379)");
    }
    host = authority.substr(1, close - 1);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (!after.starts_with(':')) {
        throw InvalidArgument("Redis URL: expected ':port' after the IPv6 address, got '" +
                              utf8_excerpt(after, 40) + "'");
      }
      port_text = after.substr(1);
      if (port_text.empty()) throw InvalidArgument("Redis URL: empty port after ':'");
    }
  } else if (const auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port_text = authority.substr(colon + 1);
    if (port_text.empty()) throw InvalidArgument("Redis URL: empty port after ':'");
    if (host.find(':') != std::string_view::npos) {
      throw InvalidArgument(
          "Redis URL: write an IPv6 address in brackets, e.g. redis://[::1]:6379");
    }
  }
  if (host.empty()) {
    throw InvalidArgument("Redis URL has no host: use redis://host[:port][/db]");
  }
  for (const char c : host) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7F || c == '%' || c == '@') {
      throw InvalidArgument("Redis URL host '" + utf8_excerpt(host, 80) +
                            "' is invalid: use a host name or an IP address");
    }
  }
  endpoint.host = std::string{host};

  if (!port_text.empty()) {
    unsigned value = 0;
    const bool digits = all_digits(port_text) && port_text.size() <= 5;
    if (digits) std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
    if (!digits || value < 1 || value > 65535) {
      throw InvalidArgument("Redis URL port '" + utf8_excerpt(port_text, 20) +
                            "' is invalid: use 1-65535");
    }
    endpoint.port = static_cast<std::uint16_t>(value);
  }

  if (!path.empty()) {
    int value = -1;
    if (all_digits(path) && path.size() <= 2) {
      std::from_chars(path.data(), path.data() + path.size(), value);
    }
    if (value < 0 || value > 15) {
      throw InvalidArgument("Redis URL database '" + utf8_excerpt(path, 20) +
                            "' is invalid: use a number 0-15 (redis://host:port/0)");
    }
    endpoint.database = value;
  }
  return endpoint;
}

}  // namespace sessionstream::redis
