#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace sessionstream::redis {

// Where a Redis server is and how to log in, from a URL:
//   redis://[[username]:password@]host[:port][/db]
// Default port 6379, database 0. rediss:// (TLS) is recognised and refused
// with an explanation: the hiredis this core links has no TLS support.
struct Endpoint {
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;
  int database = 0;
  std::string username;  // empty: AUTH with the password only
  std::string password;  // empty: no AUTH

  // The URL with the password masked, for logs and health.
  [[nodiscard]] std::string redacted() const;
};

// Throws InvalidArgument naming what is wrong (scheme, host, port, database,
// percent-encoding, TLS unsupported); never echoes the password.
[[nodiscard]] Endpoint parse_url(std::string_view url);

}  // namespace sessionstream::redis
