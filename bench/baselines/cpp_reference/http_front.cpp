#include "http_front.hpp"

#include <cctype>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <string_view>

namespace ref {

namespace {

constexpr std::size_t kMaxHead = 16 * 1024;

// Reads one request head, then passes the socket to the router.
class RequestReader : public std::enable_shared_from_this<RequestReader> {
 public:
  RequestReader(tcp::socket socket, HttpFront& front) : socket_(std::move(socket)), front_(front) {}

  void start() {
    asio::async_read_until(socket_, asio::dynamic_buffer(buffer_, kMaxHead), "\r\n\r\n",
                           [self = shared_from_this()](const error_code& ec, std::size_t n) {
                             if (ec) return;  // closed or oversized: nothing to answer
                             self->buffer_.resize(n);
                             self->front_.route(std::move(self->socket_), self->buffer_);
                           });
  }

 private:
  tcp::socket socket_;
  HttpFront& front_;
  std::string buffer_;
};

// Writes a complete response and closes.
void respond(tcp::socket socket, int status, const char* reason, const std::string& body) {
  auto s = std::make_shared<tcp::socket>(std::move(socket));
  auto text = std::make_shared<std::string>();
  *text = "HTTP/1.1 " + std::to_string(status) + " " + reason +
          "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
          "\r\nConnection: close\r\n\r\n" + body;
  asio::async_write(*s, asio::buffer(*text), [s, text](const error_code&, std::size_t) {
    error_code ignored;
    s->shutdown(tcp::socket::shutdown_send, ignored);
  });
}

std::optional<double> query_number(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    auto eq = pair.find('=');
    if (pair.substr(0, eq) == name && eq != std::string_view::npos) {
      std::string value(pair.substr(eq + 1));
      char* end = nullptr;
      double d = std::strtod(value.c_str(), &end);
      if (value.empty() || *end != '\0') return std::nullopt;
      return d;
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

// Value of a request header (name in lower case), or empty.
std::string_view header_value(std::string_view head, std::string_view name) {
  std::size_t pos = head.find("\r\n");
  while (pos != std::string_view::npos && pos + 2 < head.size()) {
    const std::size_t start = pos + 2;
    const std::size_t end = head.find("\r\n", start);
    const auto line = head.substr(start, end == std::string_view::npos ? end : end - start);
    const auto colon = line.find(':');
    if (colon == name.size()) {
      bool same = true;
      for (std::size_t i = 0; i < colon && same; ++i) {
        same = static_cast<char>(std::tolower(static_cast<unsigned char>(line[i]))) == name[i];
      }
      if (same) {
        auto value = line.substr(colon + 1);
        while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
          value.remove_prefix(1);
        }
        while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) {
          value.remove_suffix(1);
        }
        return value;
      }
    }
    pos = end;
  }
  return {};
}

}  // namespace

HttpFront::HttpFront(asio::io_context& ioc, const tcp::endpoint& at, int backlog, Broadcaster& hub,
                     Publisher& publisher)
    : acceptor_(ioc), retry_timer_(ioc), hub_(hub), publisher_(publisher) {
  acceptor_.open(at.protocol());
  acceptor_.set_option(asio::socket_base::reuse_address(true));
  acceptor_.bind(at);
  acceptor_.listen(backlog);
  accept();
}

void HttpFront::accept() {
  acceptor_.async_accept([this](const error_code& ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (ec) {
      retry_timer_.expires_after(std::chrono::milliseconds(100));
      retry_timer_.async_wait([this](const error_code& e) {
        if (!e) accept();
      });
      return;
    }
    std::make_shared<RequestReader>(std::move(socket), *this)->start();
    accept();
  });
}

void HttpFront::route(tcp::socket socket, const std::string& head) {
  std::string_view line(head);
  line = line.substr(0, line.find("\r\n"));
  auto sp1 = line.find(' ');
  auto sp2 = line.find(' ', sp1 == std::string_view::npos ? 0 : sp1 + 1);
  if (sp1 == std::string_view::npos || sp2 == std::string_view::npos) {
    respond(std::move(socket), 400, "Bad Request", R"({"error":"malformed request line"})");
    return;
  }
  const auto method = line.substr(0, sp1);
  const auto target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const auto q = target.find('?');
  const auto path = target.substr(0, q);
  const auto query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);

  if (method == "GET" && path == "/stream/sse") {
    hub_.add(std::move(socket));
  } else if (method == "GET" && path == "/stream/ws") {
    const auto key = header_value(head, "sec-websocket-key");
    if (key.empty()) {
      respond(std::move(socket), 400, "Bad Request", R"({"error":"not a WebSocket upgrade"})");
      return;
    }
    // Whatever the client sends after the head (its subscribe frame) is read and
    // discarded by the session: every client gets the one channel.
    hub_.add_websocket(std::move(socket), key);
  } else if (method == "GET" && path == "/bench/stats") {
    respond(std::move(socket), 200, "OK",
            "{\"connections\":" + std::to_string(hub_.connections()) +
                ",\"dropped\":" + std::to_string(hub_.dropped()) +
                ",\"published\":" + std::to_string(publisher_.published()) +
                ",\"publishing\":" + (publisher_.running() ? "true" : "false") + "}");
  } else if (method == "POST" && path == "/bench/publish") {
    auto rate = query_number(query, "rate");
    auto duration = query_number(query, "duration");
    auto size = query_number(query, "size").value_or(100);
    if (!rate || !duration || !(*rate > 0) || !(*duration > 0) || !(size >= 0) ||
        *rate * *duration > 1e8) {
      respond(std::move(socket), 422, "Unprocessable Entity",
              R"({"error":"need rate>0 and duration>0 (rate*duration <= 1e8), size>=0"})");
      return;
    }
    auto events = publisher_.start(*rate, *duration, static_cast<std::size_t>(size));
    respond(std::move(socket), 200, "OK",
            "{\"started\":true,\"events\":" + std::to_string(events) + "}");
  } else {
    respond(std::move(socket), 404, "Not Found", R"({"error":"no such endpoint"})");
  }
}

}  // namespace ref
