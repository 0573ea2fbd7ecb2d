#include "edge/adopt_socket.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <string>
#include <utility>

#include "sessionstream/common/errors.hpp"

namespace sessionstream::edge {

namespace {

// Closes the fd unless released; the only owner until the socket takes it.
class UniqueFd {
 public:
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  ~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  [[nodiscard]] int get() const noexcept { return fd_; }
  int release() noexcept { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

[[noreturn]] void refuse(int fd, const std::string& why) {
  throw InvalidArgument("fd " + std::to_string(fd) + " cannot be adopted: " + why +
                        "; pass a connected TCP socket");
}

void set_int_option(int fd, int level, int name, int value) noexcept {
  // Best effort: a socket that refuses an option still works without it.
  [[maybe_unused]] const int rc = ::setsockopt(fd, level, name, &value, sizeof value);
}

}  // namespace

boost::asio::ip::tcp::socket adopt_socket(boost::asio::io_context& ctx, int fd,
                                          std::chrono::milliseconds user_timeout) {
  if (fd < 0) refuse(fd, "negative");
  UniqueFd owned{fd};
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    refuse(fd, std::strerror(errno));
  }
  int type = 0;
  socklen_t type_length = sizeof type;
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &type_length) != 0 || type != SOCK_STREAM) {
    refuse(fd, "not a stream socket");
  }
  if (address.ss_family != AF_INET && address.ss_family != AF_INET6) {
    refuse(fd, "address family " + std::to_string(address.ss_family) + " is not IPv4 or IPv6");
  }
  const auto protocol =
      address.ss_family == AF_INET ? boost::asio::ip::tcp::v4() : boost::asio::ip::tcp::v6();
  set_int_option(fd, IPPROTO_TCP, TCP_NODELAY, 1);
  set_int_option(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
  set_int_option(fd, IPPROTO_TCP, TCP_USER_TIMEOUT,
                 static_cast<int>(std::clamp<long long>(user_timeout.count(), 0, INT_MAX)));

  boost::asio::ip::tcp::socket socket{ctx};
  boost::system::error_code ec;
  socket.assign(protocol, owned.get(), ec);
  if (ec) refuse(fd, ec.message());
  owned.release();
  socket.non_blocking(true, ec);
  if (ec) refuse(fd, ec.message());  // the socket closes fd as it unwinds
  return socket;
}

}  // namespace sessionstream::edge
