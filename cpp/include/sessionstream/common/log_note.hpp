#pragma once

#include <string>

namespace sessionstream {

// Something a native thread wants the host to log. The core never calls into
// the host; the host drains notes when it likes.
struct LogNote {
  std::string level;  // "debug", "info", "warning", "error"
  std::string kind;   // de-duplication key, e.g. "skip.bad_json", "redis.down"
  std::string message;
};

}  // namespace sessionstream
