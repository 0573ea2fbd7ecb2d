#pragma once

#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <string>
#include <vector>

#include "edge/frames.hpp"
#include "edge/session.hpp"
#include "sessionstream/core/event.hpp"
#include "sessionstream/edge/engine.hpp"

namespace sessionstream::edge {

// An adopted SSE response body. One write in flight: a gather write of the
// shared pre-framed event buffers (kept alive by holding their EventPtrs),
// one HTTP chunk per write when chunked. Reads only to notice the client
// leaving, into the worker's scratch buffer. Worker thread only.
class SseSession final : public Session {
 public:
  SseSession(Worker& worker, boost::asio::ip::tcp::socket socket, ConnectionPtr connection,
             SseAdopt options);

  void start() override;
  void on_ready() override;
  void on_tick(Clock::time_point now) override;
  void force_close(std::string_view reason) noexcept override;
  void abandon() noexcept override;

 private:
  // Starts a write of whatever is due, unless one is in flight.
  void pump();
  void write(std::size_t events);
  void on_write(const boost::system::error_code& ec, std::size_t bytes);
  void wait_readable();
  void on_readable(const boost::system::error_code& ec);
  void close(std::string_view reason) noexcept;
  void add(std::string_view bytes);

  boost::asio::ip::tcp::socket socket_;
  std::string initial_;      // until the first write has gone
  std::string close_frame_;  // the last write's close frame
  std::vector<EventPtr> in_flight_;
  std::vector<boost::asio::const_buffer> buffers_;
  std::size_t body_bytes_ = 0;
  std::size_t events_in_flight_ = 0;
  frames::ChunkHeader chunk_header_;
  Clock::time_point write_started_;
  Clock::time_point last_write_;
  const bool chunked_;
  bool writing_ = false;
  bool finishing_ = false;  // the close frame is written or on its way
  bool closed_ = false;
};

}  // namespace sessionstream::edge
