#pragma once

#include <memory>
#include <string>

#include "asio.hpp"
#include "broadcaster.hpp"
#include "publisher.hpp"

namespace ref {

// Accepts connections, reads one request head and routes it:
//   GET  /stream/sse                           -> handed to the broadcaster
//   GET  /stream/ws (WebSocket upgrade)        -> handed to the broadcaster
//   POST /bench/publish?rate=&duration=&size=  -> starts the publisher
//   GET  /bench/stats                          -> {"connections": n, ...}
// Hand-rolled request-line parsing: enough for the benchmark, not a web server.
class HttpFront {
 public:
  HttpFront(asio::io_context& ioc, const tcp::endpoint& at, int backlog, Broadcaster& hub,
            Publisher& publisher);

  void route(tcp::socket socket, const std::string& head);

 private:
  void accept();

  tcp::acceptor acceptor_;
  asio::steady_timer retry_timer_;  // backs off when accept fails (e.g. out of descriptors)
  Broadcaster& hub_;
  Publisher& publisher_;
};

}  // namespace ref
