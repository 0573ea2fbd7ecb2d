#pragma once

// Helpers for the delivery engine tests: loopback TCP pairs made with plain
// sockets (the server end is what a host hands to the engine), blocking reads
// with deadlines, HTTP chunk decoding and raw WebSocket frames.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sessionstream/core/hub.hpp"
#include "sessionstream/edge/engine.hpp"
#include "sessionstream/sessions/connection_manager.hpp"
#include "sessionstream/sessions/session_id.hpp"

namespace sessionstream::test {

using namespace std::chrono_literals;

// Owns one fd.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) noexcept : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = other.release();
    }
    return *this;
  }
  [[nodiscard]] int get() const noexcept { return fd_; }
  int release() noexcept { return std::exchange(fd_, -1); }
  void reset() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

struct SocketPair {
  Fd client;  // the browser's end
  Fd server;  // the end the host hands over
};

// A connected loopback TCP pair. rcvbuf/sndbuf shrink the client's receive
// and the server's send buffers (0 leaves them), so writes stall quickly.
inline SocketPair loopback_pair(int client_rcvbuf = 0, int server_sndbuf = 0) {
  Fd listener{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  if (listener.get() < 0) throw std::runtime_error("socket");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(listener.get(), 16) != 0) {
    throw std::runtime_error("bind/listen");
  }
  socklen_t length = sizeof address;
  ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&address), &length);
  Fd client{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  if (client_rcvbuf > 0) {
    ::setsockopt(client.get(), SOL_SOCKET, SO_RCVBUF, &client_rcvbuf, sizeof client_rcvbuf);
  }
  if (::connect(client.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    throw std::runtime_error("connect");
  }
  Fd server{::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC)};
  if (server.get() < 0) throw std::runtime_error("accept");
  if (server_sndbuf > 0) {
    ::setsockopt(server.get(), SOL_SOCKET, SO_SNDBUF, &server_sndbuf, sizeof server_sndbuf);
  }
  return {std::move(client), std::move(server)};
}

// Appends what arrives within timeout to out; false on timeout. EOF sets
// *eof (when given) and returns true.
inline bool read_some(int fd, std::string& out, std::chrono::milliseconds timeout,
                      bool* eof = nullptr) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return false;
  char buffer[65536];
  const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
  if (n <= 0) {
    if (eof) *eof = true;
    return true;
  }
  out.append(buffer, static_cast<std::size_t>(n));
  return true;
}

// Reads until predicate(out) holds, EOF or the deadline; returns predicate(out).
template <typename Predicate>
bool read_until(int fd, std::string& out, Predicate predicate,
                std::chrono::milliseconds timeout = 5s, bool* eof = nullptr) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool ended = false;
  while (!predicate(out) && !ended) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left <= 0ms) break;
    if (!read_some(fd, out, left, &ended)) break;
  }
  if (eof) *eof = ended;
  return predicate(out);
}

// Reads until the peer closes; true when it did within timeout.
inline bool read_to_eof(int fd, std::string& out, std::chrono::milliseconds timeout = 5s) {
  bool eof = false;
  read_until(
      fd, out, [](const std::string&) { return false; }, timeout, &eof);
  return eof;
}

inline bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

// An HTTP/1.1 chunked body: the chunks in order and whether the last chunk
// (0\r\n\r\n) was seen. nullopt when the bytes are not valid chunked framing
// (an incomplete trailing chunk is simply not returned).
struct Chunks {
  std::vector<std::string> chunks;
  bool terminated = false;
  std::size_t consumed = 0;
};

inline std::optional<Chunks> decode_chunks(std::string_view body) {
  Chunks result;
  std::size_t pos = 0;
  while (pos < body.size()) {
    const auto line_end = body.find("\r\n", pos);
    if (line_end == std::string_view::npos) break;
    const std::string_view hex = body.substr(pos, line_end - pos);
    if (hex.empty()) return std::nullopt;
    std::size_t size = 0;
    for (const char c : hex) {
      const int digit = (c >= '0' && c <= '9')   ? c - '0'
                        : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                        : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                                 : -1;
      if (digit < 0) return std::nullopt;
      size = size * 16 + static_cast<std::size_t>(digit);
    }
    const std::size_t data = line_end + 2;
    if (body.size() < data + size + 2) break;
    if (body.substr(data + size, 2) != "\r\n") return std::nullopt;
    if (size == 0) {
      result.terminated = true;
      result.consumed = data + 2;
      return result;
    }
    result.chunks.emplace_back(body.substr(data, size));
    pos = data + size + 2;
    result.consumed = pos;
  }
  return result;
}

inline std::string join(const std::vector<std::string>& parts) {
  std::string all;
  for (const auto& part : parts) all += part;
  return all;
}

// A raw WebSocket frame as a server sends it (never masked).
struct WsFrame {
  bool fin = true;
  int opcode = 0;
  std::string payload;
};

// Parses one server frame from the front of buffer; nullopt when incomplete.
inline std::optional<WsFrame> parse_frame(std::string& buffer) {
  if (buffer.size() < 2) return std::nullopt;
  const auto b0 = static_cast<unsigned char>(buffer[0]);
  const auto b1 = static_cast<unsigned char>(buffer[1]);
  std::size_t length = b1 & 0x7F;
  std::size_t pos = 2;
  if (length == 126) {
    if (buffer.size() < 4) return std::nullopt;
    length = (static_cast<unsigned char>(buffer[2]) << 8) | static_cast<unsigned char>(buffer[3]);
    pos = 4;
  } else if (length == 127) {
    if (buffer.size() < 10) return std::nullopt;
    length = 0;
    for (int i = 0; i < 8; ++i) length = (length << 8) | static_cast<unsigned char>(buffer[2 + i]);
    pos = 10;
  }
  if (buffer.size() < pos + length) return std::nullopt;
  WsFrame frame{(b0 & 0x80) != 0, b0 & 0x0F, buffer.substr(pos, length)};
  buffer.erase(0, pos + length);
  return frame;
}

// Reads the next server frame from fd (bytes already read are in buffer).
inline std::optional<WsFrame> read_frame(int fd, std::string& buffer,
                                         std::chrono::milliseconds timeout = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (auto frame = parse_frame(buffer)) return frame;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    bool eof = false;
    if (left <= 0ms || !read_some(fd, buffer, left, &eof) || eof) return std::nullopt;
  }
}

// A client frame: masked unless told otherwise; rsv sets the RSV bits.
inline std::string client_frame(int opcode, std::string_view payload, bool fin = true,
                                bool masked = true, int rsv = 0) {
  std::string frame;
  frame.push_back(static_cast<char>((fin ? 0x80 : 0) | (rsv << 4) | opcode));
  const unsigned char mask_bit = masked ? 0x80 : 0;
  if (payload.size() < 126) {
    frame.push_back(static_cast<char>(mask_bit | payload.size()));
  } else if (payload.size() < 65536) {
    frame.push_back(static_cast<char>(mask_bit | 126));
    frame.push_back(static_cast<char>(payload.size() >> 8));
    frame.push_back(static_cast<char>(payload.size() & 0xFF));
  } else {
    frame.push_back(static_cast<char>(mask_bit | 127));
    for (int i = 7; i >= 0; --i)
      frame.push_back(static_cast<char>((payload.size() >> (8 * i)) & 0xFF));
  }
  const unsigned char key[4] = {0x12, 0x34, 0x56, 0x78};
  if (masked) frame.append(reinterpret_cast<const char*>(key), 4);
  for (std::size_t i = 0; i < payload.size(); ++i) {
    frame.push_back(masked ? static_cast<char>(payload[i] ^ key[i % 4]) : payload[i]);
  }
  return frame;
}

inline void send_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) throw std::runtime_error("send");
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

// The close code of a close frame's payload (0 when it has none).
inline int close_code_of(const WsFrame& frame) {
  if (frame.payload.size() < 2) return 0;
  return (static_cast<unsigned char>(frame.payload[0]) << 8) |
         static_cast<unsigned char>(frame.payload[1]);
}

inline std::string upgrade_request(std::string_view target = "/ws") {
  return "GET " + std::string{target} +
         " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
}

// Counts non-overlapping occurrences.
inline std::size_t count_of(std::string_view haystack, std::string_view needle) {
  std::size_t n = 0;
  for (auto pos = haystack.find(needle); pos != std::string_view::npos;
       pos = haystack.find(needle, pos + needle.size())) {
    ++n;
  }
  return n;
}

// A hub, a connection manager and an engine, plus a way to open connections
// for it the way the host does.
class EngineHarness {
 public:
  explicit EngineHarness(edge::EngineConfig config = fast_config(),
                         std::shared_ptr<Notifier> host = std::make_shared<Notifier>())
      : host_(std::move(host)),
        hub_(hub_config()),
        manager_(hub_, ConnectionLimits{100000, 100000, 100000}),
        engine_(std::make_unique<edge::Engine>(config, host_)) {}

  ~EngineHarness() { engine_->stop(); }

  static edge::EngineConfig fast_config() {
    edge::EngineConfig config;
    config.heartbeat_interval = 10s;
    config.send_timeout = 2s;
    return config;
  }

  static HubConfig hub_config() {
    HubConfig config;
    config.epoch = 0xe1;
    return config;
  }

  ConnectionPtr open(Framing framing, std::vector<std::string> channels = {"c"},
                     MailboxLimits limits = {}, std::string session = {}) {
    ConnectionRequest request;
    request.session_id = session.empty() ? generate_session_id() : std::move(session);
    request.channels = std::move(channels);
    request.mailbox.framing = framing;
    request.mailbox.limits = limits;
    return manager_.open(std::move(request), engine_->next_notifier());
  }

  Hub& hub() { return hub_; }
  ConnectionManager& manager() { return manager_; }
  edge::Engine& engine() { return *engine_; }
  const std::shared_ptr<Notifier>& host() { return host_; }

 private:
  std::shared_ptr<Notifier> host_;
  Hub hub_;
  ConnectionManager manager_;
  std::unique_ptr<edge::Engine> engine_;  // stopped before the manager goes
};

}  // namespace sessionstream::test
