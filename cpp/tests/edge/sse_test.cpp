#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "sessionstream/edge/engine.hpp"
#include "support.hpp"
#include "test_support.hpp"

namespace sessionstream {
namespace {

using namespace std::chrono_literals;
using edge::EngineConfig;
using edge::SseAdopt;
using test::decode_chunks;
using test::EngineHarness;
using test::loopback_pair;
using test::parse_sse;
using test::read_until;

constexpr std::string_view kWelcome = "retry: 3000\nevent: welcome\ndata: {\"id\":1}\n\n";

// Reads a chunked body until count SSE messages (welcome included) arrived.
test::Chunks read_chunks(int fd, std::string& raw, std::size_t messages) {
  read_until(fd, raw, [&](const std::string& bytes) {
    const auto chunks = decode_chunks(bytes);
    return chunks && parse_sse(test::join(chunks->chunks)).size() >= messages;
  });
  const auto chunks = decode_chunks(raw);
  EXPECT_TRUE(chunks.has_value()) << "invalid chunked framing: " << raw;
  return chunks.value_or(test::Chunks{});
}

TEST(EdgeSse, ChunkedInitialBytesThenEvents) {
  EngineHarness h;
  auto pair = loopback_pair();
  auto connection = h.open(Framing::sse);
  h.engine().adopt_sse(pair.server.release(), connection,
                       SseAdopt{true, std::string{kWelcome}, ""});
  for (int i = 1; i <= 3; ++i) h.hub().publish("c", "event " + std::to_string(i), "message", false);

  std::string raw;
  const auto chunks = read_chunks(pair.client.get(), raw, 4);
  ASSERT_FALSE(chunks.chunks.empty());
  EXPECT_EQ(chunks.chunks.front().substr(0, kWelcome.size()), kWelcome);
  const auto messages = parse_sse(test::join(chunks.chunks));
  ASSERT_EQ(messages.size(), 4u);
  EXPECT_EQ(messages[0].event, "welcome");
  EXPECT_EQ(messages[1].data, "event 1");
  EXPECT_EQ(messages[3].data, "event 3");
  EXPECT_FALSE(messages[3].id.empty());
  EXPECT_FALSE(chunks.terminated);
  EXPECT_EQ(h.engine().metrics().adopted_sse, 1u);
  EXPECT_EQ(h.engine().metrics().open_sse, 1u);
}

TEST(EdgeSse, NonChunkedWritesBareFrames) {
  EngineHarness h;
  auto pair = loopback_pair();
  auto connection = h.open(Framing::sse);
  h.engine().adopt_sse(pair.server.release(), connection,
                       SseAdopt{false, std::string{kWelcome}, ""});
  h.hub().publish("c", "line one\nline two", "update", false);

  std::string raw;
  read_until(pair.client.get(), raw,
             [](const std::string& bytes) { return parse_sse(bytes).size() >= 2; });
  EXPECT_EQ(raw.substr(0, kWelcome.size()), kWelcome);
  const auto messages = parse_sse(raw);
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[1].event, "update");
  EXPECT_EQ(messages[1].data, "line one\nline two");
  EXPECT_FALSE(test::contains(raw, "\r\n"));
}

TEST(EdgeSse, EventsQueuedBeforeAdoptionGoInOneGatherWrite) {
  EngineHarness h;
  auto pair = loopback_pair();
  auto connection = h.open(Framing::sse);
  for (int i = 1; i <= 50; ++i) h.hub().publish("c", "e" + std::to_string(i), "message", false);
  h.engine().adopt_sse(pair.server.release(), connection,
                       SseAdopt{true, std::string{kWelcome}, ""});

  std::string raw;
  const auto chunks = read_chunks(pair.client.get(), raw, 51);
  ASSERT_EQ(chunks.chunks.size(), 1u) << "initial bytes and every queued event form one chunk";
  const auto messages = parse_sse(chunks.chunks.front());
  ASSERT_EQ(messages.size(), 51u);
  EXPECT_EQ(test::event_seqs(messages).size(), 50u);
  // The counters follow the write's completion, which may run after the read.
  EXPECT_TRUE(test::eventually([&] { return h.engine().metrics().writes == 1; }));
  const auto metrics = h.engine().metrics();
  EXPECT_EQ(metrics.writes, 1u);
  EXPECT_EQ(metrics.events_written, 51u) << "50 events and the position frame of the open";
  EXPECT_EQ(metrics.bytes_written, raw.size());
}

TEST(EdgeSse, SeveralEventsPerWriteWhenBehind) {
  EngineConfig config = EngineHarness::fast_config();
  config.max_batch_bytes = 1024;
  EngineHarness h{config};
  auto pair = loopback_pair();
  auto connection = h.open(Framing::sse);
  for (int i = 1; i <= 100; ++i) h.hub().publish("c", std::string(100, 'x'), "message", false);
  h.engine().adopt_sse(pair.server.release(), connection, SseAdopt{true, "", ""});

  std::string raw;
  const auto chunks = read_chunks(pair.client.get(), raw, 100);
  EXPECT_EQ(parse_sse(test::join(chunks.chunks)).size(), 100u);
  // 164 budget bytes per event: 7 per take, so 15 writes.
  EXPECT_EQ(chunks.chunks.size(), 15u);
  EXPECT_TRUE(test::eventually([&] { return h.engine().metrics().writes == 15; }));
  EXPECT_EQ(h.engine().metrics().writes, 15u);
}

TEST(EdgeSse, HeartbeatAfterIdleInterval) {
  EngineConfig config = EngineHarness::fast_config();
  config.heartbeat_interval = 100ms;
  EngineHarness h{config};
  auto pair = loopback_pair();
  auto connection = h.open(Framing::sse);
  h.engine().adopt_sse(pair.server.release(), connection,
                       SseAdopt{true, std::string{kWelcome}, ""});

  std::string raw;
  EXPECT_TRUE(read_until(pair.client.get(), raw, [](const std::string& bytes) {
    return test::contains(bytes, "8\r\n: ping\n\n\r\n");
  }));
  EXPECT_TRUE(decode_chunks(raw).has_value());
  EXPECT_GE(h.engine().metrics().heartbeats, 1u);
  EXPECT_FALSE(connection->is_closed());
}

TEST(EdgeSse, NonChunkedHeartbeat) {
  EngineConfig config = EngineHarness::fast_config();
  config.heartbeat_interval = 50ms;
  EngineHarness h{config};
  auto pair = loopback_pair();
  auto connection = h.open(Framing::sse);
  h.engine().adopt_sse(pair.server.release(), connection, SseAdopt{false, "", ""});
  std::string raw;
  EXPECT_TRUE(read_until(pair.client.get(), raw, [](const std::string& bytes) {
    return bytes.ends_with("\n\n: ping\n\n");
  }));
}

TEST(EdgeSse, ClientDisconnectClosesAtOnce) {
  EngineHarness h;
  auto pair = loopback_pair();
  auto connection = h.open(Framing::sse);
  h.engine().adopt_sse(pair.server.release(), connection,
                       SseAdopt{true, std::string{kWelcome}, ""});
  std::string raw;
  read_chunks(pair.client.get(), raw, 1);

  const auto before = std::chrono::steady_clock::now();
  pair.client.reset();
  EXPECT_TRUE(test::eventually([&] { return connection->is_closed(); }, 2s));
  EXPECT_LT(std::chrono::steady_clock::now() - before, 1s);
  EXPECT_EQ(connection->mailbox()->closed_reason(), close_reason::client_gone);
  EXPECT_TRUE(h.engine().wait_idle(2s));
  const auto metrics = h.engine().metrics();
  EXPECT_EQ(metrics.open_sse, 0u);
  EXPECT_EQ(metrics.closed_total, 1u);
  EXPECT_EQ(h.manager().metrics().active_connections, 0u);
}

TEST(EdgeSse, BytesFromTheClientAreDiscarded) {
  EngineHarness h;
  auto pair = loopback_pair();
  auto connection = h.open(Framing::sse);
  h.engine().adopt_sse(pair.server.release(), connection, SseAdopt{true, "", "GET / HTTP/1.1\r\n"});
  test::send_all(pair.client.get(), std::string(100000, 'z'));
  h.hub().publish("c", "still here", "message", false);
  std::string raw;
  read_chunks(pair.client.get(), raw, 1);
  EXPECT_EQ(parse_sse(test::join(decode_chunks(raw)->chunks)).at(0).data, "still here");
  EXPECT_FALSE(connection->is_closed());
}

TEST(EdgeSse, CloseFrameOnShutdownWithRetryThenLastChunk) {
  EngineHarness h;
  auto pair = loopback_pair();
  auto connection = h.open(Framing::sse);
  h.engine().adopt_sse(pair.server.release(), connection,
                       SseAdopt{true, std::string{kWelcome}, ""});
  h.hub().publish("c", "last", "message", false);
  std::string raw;
  read_chunks(pair.client.get(), raw, 2);

  h.engine().begin_shutdown();
  h.manager().shutdown();
  EXPECT_TRUE(test::read_to_eof(pair.client.get(), raw));
  const auto chunks = decode_chunks(raw);
  ASSERT_TRUE(chunks.has_value());
  EXPECT_TRUE(chunks->terminated);
  EXPECT_EQ(chunks->consumed, raw.size()) << "nothing after the last chunk";
  EXPECT_EQ(chunks->chunks.back(),
            "retry: 5000\nevent: close\ndata: {\"reason\":\"shutdown\"}\n\n");
  EXPECT_TRUE(h.engine().wait_idle(2s));
  EXPECT_EQ(connection->mailbox()->closed_reason(), close_reason::shutdown);
}

TEST(EdgeSse, CloseFrameWithoutRetryForOtherReasons) {
  EngineConfig config = EngineHarness::fast_config();
  config.shutdown_retry_ms = 1234;
  EngineHarness h{config};
  auto pair = loopback_pair();
  auto connection = h.open(Framing::sse);
  h.engine().adopt_sse(pair.server.release(), connection, SseAdopt{false, "", ""});
  h.manager().close_session(connection->session_id(), close_reason::session_cleanup);
  std::string raw;
  EXPECT_TRUE(test::read_to_eof(pair.client.get(), raw));
  // The position frame of the open ("id: ...\n\n"), then the close frame.
  EXPECT_EQ(raw, "id: e1-0\n\nevent: close\ndata: {\"reason\":\"session_cleanup\"}\n\n");
  EXPECT_TRUE(h.engine().wait_idle(2s));
}

TEST(EdgeSse, ShutdownRetryUsesTheConfiguredValue) {
  EngineConfig config = EngineHarness::fast_config();
  config.shutdown_retry_ms = 1234;
  EngineHarness h{config};
  auto pair = loopback_pair();
  auto connection = h.open(Framing::sse);
  h.engine().adopt_sse(pair.server.release(), connection, SseAdopt{false, "", ""});
  h.manager().shutdown();
  std::string raw;
  EXPECT_TRUE(test::read_to_eof(pair.client.get(), raw));
  EXPECT_EQ(raw, "id: e1-0\n\nretry: 1234\nevent: close\ndata: {\"reason\":\"shutdown\"}\n\n");
}

TEST(EdgeSse, AlreadyClosedConnectionGetsInitialAndCloseFrame) {
  EngineHarness h;
  auto pair = loopback_pair();
  auto connection = h.open(Framing::sse);
  connection->mailbox()->close(close_reason::replaced);
  h.engine().adopt_sse(pair.server.release(), connection,
                       SseAdopt{true, std::string{kWelcome}, ""});
  std::string raw;
  EXPECT_TRUE(test::read_to_eof(pair.client.get(), raw));
  const auto chunks = decode_chunks(raw);
  ASSERT_TRUE(chunks && chunks->terminated);
  ASSERT_EQ(chunks->chunks.size(), 1u);
  EXPECT_EQ(chunks->chunks[0], std::string{kWelcome} +
                                   "id: e1-0\n\nid: replaced\nevent: close\ndata: "
                                   "{\"reason\":\"replaced\"}\n\n");
}

TEST(EdgeSse, ClientThatStopsReadingIsClosedBySendTimeout) {
  EngineConfig config = EngineHarness::fast_config();
  config.send_timeout = 300ms;
  EngineHarness h{config};
  auto pair = loopback_pair(4096, 4096);
  auto connection = h.open(Framing::sse, {"c"}, MailboxLimits{100000, 1 << 30});
  h.engine().adopt_sse(pair.server.release(), connection, SseAdopt{true, "", ""});
  const std::string big(64 * 1024, 'b');
  for (int i = 0; i < 64; ++i) h.hub().publish("c", big, "message", false);

  EXPECT_TRUE(test::eventually([&] { return connection->is_closed(); }, 5s));
  EXPECT_EQ(connection->mailbox()->closed_reason(), close_reason::slow_consumer);
  EXPECT_GE(h.engine().metrics().send_timeouts, 1u);
  EXPECT_TRUE(h.engine().wait_idle(2s));
  // The client gets the connection closed under it, not a close frame.
  std::string raw;
  EXPECT_TRUE(test::read_to_eof(pair.client.get(), raw, 5s));
}

TEST(EdgeSse, ClientThatStopsReadingOverflowsItsMailbox) {
  EngineConfig config = EngineHarness::fast_config();
  config.send_timeout = 300ms;
  EngineHarness h{config};
  auto pair = loopback_pair(4096, 4096);
  auto connection = h.open(Framing::sse, {"c"}, MailboxLimits{8, 1 << 30});
  h.engine().adopt_sse(pair.server.release(), connection, SseAdopt{true, "", ""});
  const std::string big(64 * 1024, 'b');
  for (int i = 0; i < 64; ++i) {
    h.hub().publish("c", big, "message", false);
    if (connection->mailbox()->closed()) break;
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_TRUE(test::eventually([&] { return connection->mailbox()->closed(); }, 2s));
  EXPECT_EQ(connection->mailbox()->closed_reason(), close_reason::slow_consumer);
  // The write in flight never completes: the send timeout ends the session.
  EXPECT_TRUE(test::eventually([&] { return connection->is_closed(); }, 5s));
  EXPECT_TRUE(h.engine().wait_idle(2s));
}

}  // namespace
}  // namespace sessionstream
