#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>

namespace sessionstream::edge {

// A TCP socket of ctx made from a connected fd handed over by the host: the
// protocol from getsockname's family, non-blocking, TCP_NODELAY, SO_KEEPALIVE
// and TCP_USER_TIMEOUT=user_timeout so half-open peers are found. Owns fd in
// every case: throws InvalidArgument (fd closed) when it is not a connected
// TCP stream socket.
[[nodiscard]] boost::asio::ip::tcp::socket adopt_socket(boost::asio::io_context& ctx, int fd,
                                                        std::chrono::milliseconds user_timeout);

}  // namespace sessionstream::edge
