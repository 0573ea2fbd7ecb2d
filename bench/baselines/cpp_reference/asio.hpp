#pragma once

// Boost 1.74 with g++ 12 in C++20 needs <utility> before Asio's headers.
#include <utility>

#include <boost/asio.hpp>

namespace ref {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
}  // namespace ref
