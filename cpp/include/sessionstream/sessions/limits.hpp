#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "sessionstream/common/errors.hpp"

namespace sessionstream {

struct ConnectionLimits {
  std::size_t max_connections = 10'000;
  std::size_t max_per_ip = 1'000;
  std::size_t max_per_session = 32;
};

enum class LimitKind { server_full, per_ip, per_session };

[[nodiscard]] const char* to_string(LimitKind kind) noexcept;

// A connection was refused by a cap. server_full maps to HTTP 503 with
// Retry-After; per_ip and per_session to 429; WebSocket closes with 1013.
class LimitExceeded : public Error {
 public:
  LimitExceeded(LimitKind kind, std::size_t limit);
  [[nodiscard]] LimitKind kind() const noexcept { return kind_; }
  [[nodiscard]] std::size_t limit() const noexcept { return limit_; }

 private:
  LimitKind kind_;
  std::size_t limit_;
};

}  // namespace sessionstream
