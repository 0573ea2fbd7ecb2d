#include "sessionstream/sessions/limits.hpp"

#include <string>

namespace sessionstream {

const char* to_string(LimitKind kind) noexcept {
  switch (kind) {
    case LimitKind::server_full:
      return "server_full";
    case LimitKind::per_ip:
      return "per_ip";
    case LimitKind::per_session:
      return "per_session";
  }
  return "unknown";
}

namespace {
std::string describe(LimitKind kind, std::size_t limit) {
  switch (kind) {
    case LimitKind::server_full:
      return "server is full: " + std::to_string(limit) + " connections open (max_connections)";
    case LimitKind::per_ip:
      return "too many connections from this address: limit " + std::to_string(limit) +
             " (max_per_ip)";
    case LimitKind::per_session:
      return "too many connections for this session: limit " + std::to_string(limit) +
             " (max_per_session)";
  }
  return "connection limit reached";
}
}  // namespace

LimitExceeded::LimitExceeded(LimitKind kind, std::size_t limit)
    : Error(describe(kind, limit)), kind_(kind), limit_(limit) {}

}  // namespace sessionstream
