#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "asio.hpp"
#include "context.hpp"
#include "run_stats.hpp"

namespace loadgen {

// One simulated client. Its life is one connection, plus a second one when the
// reconnect storm asks for it. Subclasses implement one transport each.
//
// Commands (release_stall, reconnect, stop) come from the runner on the same
// thread; they cancel whatever the client's coroutine is waiting on.
class Connection {
 public:
  Connection(Context& ctx, std::size_t index, bool stalled);
  virtual ~Connection() = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void start();
  void release_stall();  // a stalled client starts reading to see what the server did
  bool reconnect();      // close now and connect again with the last id seen; false: not open
  void stop();           // close for good

 protected:
  enum class Command { none, reconnect, stop };

  // One connection from connect to close; returns when it is over.
  virtual asio::awaitable<void> session() = 0;
  virtual void close_transport() = 0;

  // Opens, binds and connects s; arms the setup deadline first.
  asio::awaitable<error_code> connect(tcp::socket& s);
  void setup_failed(std::string reason);
  void setup_done();  // connected and subscribed
  void closed_by_server(std::string_view reason);
  asio::awaitable<void> hold_stall();  // returns once released or commanded
  bool commanded() const { return command_ != Command::none; }
  bool holding_stall() const { return stalled_ && !cursor_.resumed; }
  std::string setup_error(const error_code& ec, const char* what) const;

  Context& ctx_;
  const std::size_t index_;
  const bool stalled_;
  StreamCursor cursor_;
  Command command_ = Command::none;
  bool open_ = false;

 private:
  asio::awaitable<void> run();
  void arm_deadline();
  void begin_setup();
  void finish_drain();

  asio::steady_timer timer_;  // setup deadline, later the stall hold
  std::uint64_t deadline_generation_ = 0;
  bool in_setup_ = false;
  bool deadline_hit_ = false;
  bool draining_ = false;
};

std::int64_t realtime_us();
std::string describe(const error_code& ec);

}  // namespace loadgen
