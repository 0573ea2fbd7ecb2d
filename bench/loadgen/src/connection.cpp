#include "connection.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <cstdio>
#include <ctime>
#include <exception>

namespace loadgen {

std::int64_t realtime_us() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
}

std::string describe(const error_code& ec) {
  if (ec == asio::error::eof) return "eof";
  if (ec == asio::error::connection_reset) return "reset";
  if (ec == asio::error::connection_refused) return "refused";
  if (ec == asio::error::timed_out) return "timed out";
  return ec.message();
}

Connection::Connection(Context& ctx, std::size_t index, bool stalled)
    : ctx_(ctx), index_(index), stalled_(stalled), timer_(ctx.ioc) {}

void Connection::start() {
  begin_setup();  // counted now, so the runner never sees a launched client as settled
  asio::co_spawn(ctx_.ioc, run(), [this](std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        std::fprintf(stderr, "loadgen: connection %zu failed: %s\n", index_, ex.what());
      }
    }
  });
}

asio::awaitable<void> Connection::run() {
  co_await session();
  open_ = false;
  finish_drain();  // a stalled client still open when the drain window closed
  if (command_ == Command::reconnect) {
    command_ = Command::none;
    cursor_.resumed = true;
    begin_setup();
    co_await session();
    open_ = false;
  }
}

void Connection::begin_setup() {
  in_setup_ = true;
  ++ctx_.stats.setup_pending;
}

void Connection::finish_drain() {
  if (!draining_) return;
  draining_ = false;
  --ctx_.stats.draining;
}

void Connection::release_stall() {
  if (!holding_stall() || !open_) return;  // never connected: nothing to drain
  draining_ = true;
  ++ctx_.stats.draining;
  timer_.cancel();
}

bool Connection::reconnect() {
  if (!open_ || stalled_ || cursor_.resumed) return false;
  command_ = Command::reconnect;
  close_transport();
  timer_.cancel();
  return true;
}

void Connection::stop() {
  command_ = Command::stop;
  close_transport();
  timer_.cancel();
}

void Connection::arm_deadline() {
  const auto generation = ++deadline_generation_;
  deadline_hit_ = false;
  timer_.expires_after(std::chrono::duration_cast<asio::steady_timer::duration>(
      std::chrono::duration<double>(ctx_.options.connect_timeout)));
  // A generation check, because a cancelled deadline may already have fired.
  timer_.async_wait([this, generation](const error_code& ec) {
    if (ec || generation != deadline_generation_ || !in_setup_) return;
    deadline_hit_ = true;
    close_transport();
  });
}

asio::awaitable<error_code> Connection::connect(tcp::socket& s) {
  arm_deadline();

  error_code ec;
  s.open(ctx_.server.protocol(), ec);
  if (ec) co_return ec;
  s.set_option(tcp::no_delay(true), ec);
  if (stalled_ && ctx_.options.stall_rcvbuf > 0) {
    // Set before connect so the advertised window is small from the start.
    s.set_option(asio::socket_base::receive_buffer_size(ctx_.options.stall_rcvbuf), ec);
  }
  if (!ctx_.source_ips.empty()) {
    // Let connect() pick the port per 4-tuple, so every source address gets the
    // whole ephemeral range instead of sharing one.
    int one = 1;
    ::setsockopt(s.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    s.bind(tcp::endpoint(ctx_.source_ips[index_ % ctx_.source_ips.size()], 0), ec);
    if (ec) co_return ec;
  }
  co_await s.async_connect(ctx_.server, asio::redirect_error(asio::use_awaitable, ec));
  co_return ec;
}

std::string Connection::setup_error(const error_code& ec, const char* what) const {
  if (deadline_hit_) return std::string(what) + ": timeout";
  return std::string(what) + ": " + describe(ec);
}

void Connection::setup_failed(std::string reason) {
  if (!in_setup_) return;
  in_setup_ = false;
  ++deadline_generation_;
  timer_.cancel();
  --ctx_.stats.setup_pending;
  close_transport();
  // A reconnect or stop that interrupted setup is the runner's doing, not an error.
  if (command_ == Command::none) ctx_.stats.on_connect_error(cursor_, std::move(reason));
}

void Connection::setup_done() {
  in_setup_ = false;
  ++deadline_generation_;
  timer_.cancel();
  --ctx_.stats.setup_pending;
  open_ = true;
  ctx_.stats.on_connected(cursor_);
}

void Connection::closed_by_server(std::string_view reason) {
  open_ = false;
  if (commanded()) return;  // we closed it ourselves
  if (holding_stall()) {
    if (!draining_) return;
    finish_drain();
    ctx_.stats.on_closed(true, reason);
    return;
  }
  ctx_.stats.on_closed(false, reason);
}

asio::awaitable<void> Connection::hold_stall() {
  ++ctx_.stats.stalled;
  timer_.expires_at(asio::steady_timer::time_point::max());
  error_code ec;
  while (!draining_ && !commanded()) {
    co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

}  // namespace loadgen
