#pragma once

#include <string>
#include <utility>
#include <vector>

#include "asio.hpp"
#include "options.hpp"
#include "run_stats.hpp"
#include "url.hpp"

namespace loadgen {

// What every connection shares. Single-threaded: owned by the runner and used
// only from the io_context thread.
struct Context {
  asio::io_context& ioc;
  const Options& options;
  const Url& url;
  tcp::endpoint server;
  std::vector<asio::ip::address> source_ips;
  std::vector<std::pair<std::string, std::string>> headers;  // from --header
  RunStats& stats;
  // One read buffer for all connections: a read is fully consumed before the
  // coroutine suspends again, so no two reads can overlap on one thread.
  std::vector<char> scratch;
};

}  // namespace loadgen
