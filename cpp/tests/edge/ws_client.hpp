#pragma once

// A Beast WebSocket client over the client end of a loopback pair, for the
// engine tests. Every operation is bounded by a deadline so a misbehaving
// server fails a test instead of hanging it.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <thread>

#include "support.hpp"

namespace sessionstream::test {

class WsClient {
 public:
  using Response = boost::beast::websocket::response_type;

  explicit WsClient(Fd fd) : ws_(context_) {
    ws_.next_layer().assign(boost::asio::ip::tcp::v4(), fd.release());
  }

  // Runs the client handshake while adopt(request bytes) plays the host: it
  // reads the request from the server end as uvicorn would and hands it over.
  template <typename Adopt>
  std::optional<Response> handshake(int server_fd, Adopt adopt, std::string target = "/ws?x=1") {
    Response response;
    bool done = false;
    ws_.async_handshake(response, "127.0.0.1", target, [&](const boost::system::error_code& ec) {
      done = true;
      error_ = ec;
    });
    std::thread runner([this] { context_.run_for(std::chrono::seconds(5)); });
    std::string request;
    read_until(server_fd, request, [](const std::string& bytes) {
      return bytes.find("\r\n\r\n") != std::string::npos;
    });
    adopt(std::move(request));
    runner.join();
    context_.restart();
    if (!done || error_) return std::nullopt;
    return response;
  }

  // The next message; nullopt on error (error() says which, e.g. closed).
  std::optional<std::string> read(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    boost::beast::flat_buffer buffer;
    bool done = false;
    ws_.async_read(buffer, [&](const boost::system::error_code& ec, std::size_t) {
      done = true;
      error_ = ec;
    });
    run(timeout);
    if (!done) {
      error_ = boost::asio::error::timed_out;
      return std::nullopt;
    }
    if (error_) return std::nullopt;
    binary_ = ws_.got_binary();
    return boost::beast::buffers_to_string(buffer.data());
  }

  void write(std::string_view text, bool binary = false) {
    ws_.binary(binary);
    ws_.write(boost::asio::buffer(text.data(), text.size()));
  }

  // Sends a close frame and waits for the server's.
  bool close(
      boost::beast::websocket::close_code code = boost::beast::websocket::close_code::normal) {
    bool done = false;
    ws_.async_close(code, [&](const boost::system::error_code& ec) {
      done = true;
      error_ = ec;
    });
    run(std::chrono::seconds(5));
    return done && !error_;
  }

  [[nodiscard]] const boost::system::error_code& error() const noexcept { return error_; }
  [[nodiscard]] bool last_binary() const noexcept { return binary_; }
  [[nodiscard]] const boost::beast::websocket::close_reason& reason() const { return ws_.reason(); }
  boost::beast::websocket::stream<boost::asio::ip::tcp::socket>& stream() { return ws_; }

 private:
  void run(std::chrono::milliseconds timeout) {
    context_.restart();
    context_.run_for(timeout);
  }

  boost::asio::io_context context_;
  boost::beast::websocket::stream<boost::asio::ip::tcp::socket> ws_;
  boost::system::error_code error_;
  bool binary_ = false;
};

}  // namespace sessionstream::test
