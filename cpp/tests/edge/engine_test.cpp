#include <fcntl.h>
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "sessionstream/common/errors.hpp"
#include "sessionstream/edge/engine.hpp"
#include "support.hpp"
#include "test_support.hpp"
#include "ws_client.hpp"

namespace sessionstream {
namespace {

using namespace std::chrono_literals;
using edge::Engine;
using edge::EngineConfig;
using edge::InboundMessage;
using edge::SseAdopt;
using edge::WebSocketAdopt;
using test::EngineHarness;
using test::loopback_pair;

bool fd_is_open(int fd) {
  return ::fcntl(fd, F_GETFD) != -1;
}

TEST(EdgeEngine, ConfigIsValidated) {
  EngineConfig config;
  config.threads = 0;
  EXPECT_THROW(Engine(config, nullptr), InvalidArgument);
  config = {};
  config.heartbeat_interval = 0ms;
  EXPECT_THROW(Engine(config, nullptr), InvalidArgument);
  config = {};
  config.ws_hard_max_message_bytes = config.ws_max_message_bytes - 1;
  EXPECT_THROW(Engine(config, nullptr), InvalidArgument);
  config = {};
  config.ws_messages_per_second = 0;
  EXPECT_THROW(Engine(config, nullptr), InvalidArgument);
}

TEST(EdgeEngine, NextNotifierRoundRobinsOverTheWorkers) {
  EngineConfig config;
  config.threads = 3;
  Engine engine{config, nullptr};
  std::vector<std::shared_ptr<Notifier>> seen;
  for (int i = 0; i < 6; ++i) seen.push_back(engine.next_notifier());
  EXPECT_EQ(std::set<std::shared_ptr<Notifier>>(seen.begin(), seen.end()).size(), 3u);
  EXPECT_EQ(seen[0], seen[3]);
  EXPECT_EQ(seen[1], seen[4]);
}

TEST(EdgeEngine, ConnectionOfAnotherNotifierIsRefusedAndTheFdClosed) {
  EngineHarness h;
  auto pair = loopback_pair();
  ConnectionRequest request;
  request.session_id = generate_session_id();
  auto connection = h.manager().open(std::move(request), std::make_shared<Notifier>());
  const int fd = pair.server.release();
  EXPECT_THROW(h.engine().adopt_sse(fd, connection, {}), InvalidArgument);
  std::string raw;
  EXPECT_TRUE(test::read_to_eof(pair.client.get(), raw));
  EXPECT_FALSE(connection->is_closed()) << "the host still owns the connection";
  EXPECT_THROW(h.engine().adopt_websocket(-1, nullptr, {}), InvalidArgument);
}

TEST(EdgeEngine, FdThatIsNotATcpSocketIsRefusedAndClosed) {
  EngineHarness h;
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  test::Fd write_end{pipe_fds[1]};
  auto connection = h.open(Framing::sse);
  EXPECT_THROW(h.engine().adopt_sse(pipe_fds[0], connection, {}), InvalidArgument);
  EXPECT_FALSE(fd_is_open(pipe_fds[0]));
  EXPECT_EQ(h.engine().metrics().adopted_sse, 0u);
  EXPECT_TRUE(h.engine().wait_idle(10ms));
}

TEST(EdgeEngine, AdoptAfterBeginShutdownThrowsClosedAndClosesTheConnection) {
  EngineHarness h;
  h.engine().begin_shutdown();
  for (const Framing framing : {Framing::sse, Framing::websocket}) {
    auto pair = loopback_pair();
    auto connection = h.open(framing);
    if (framing == Framing::sse) {
      EXPECT_THROW(h.engine().adopt_sse(pair.server.release(), connection, {}), Closed);
    } else {
      EXPECT_THROW(h.engine().adopt_websocket(pair.server.release(), connection,
                                              {test::upgrade_request(), {}, ""}),
                   Closed);
    }
    EXPECT_TRUE(connection->is_closed());
    EXPECT_EQ(connection->mailbox()->closed_reason(), close_reason::shutdown);
    std::string raw;
    EXPECT_TRUE(test::read_to_eof(pair.client.get(), raw));
    EXPECT_TRUE(raw.empty());
  }
}

TEST(EdgeEngine, GracefulShutdownFlushesCloseFramesThenWaitIdle) {
  EngineHarness h;
  auto sse_pair = loopback_pair();
  auto sse = h.open(Framing::sse);
  h.engine().adopt_sse(sse_pair.server.release(), sse, SseAdopt{true, "", ""});

  auto ws_pair = loopback_pair();
  auto ws = h.open(Framing::websocket);
  test::WsClient client{std::move(ws_pair.client)};
  ASSERT_TRUE(client.handshake(ws_pair.server.get(), [&](std::string request) {
    h.engine().adopt_websocket(ws_pair.server.release(), ws, {std::move(request), {}, ""});
  }));
  EXPECT_FALSE(h.engine().wait_idle(50ms));

  h.hub().publish("c", "before shutdown", "message", false);
  h.engine().begin_shutdown();
  h.manager().shutdown();

  std::string raw;
  EXPECT_TRUE(test::read_to_eof(sse_pair.client.get(), raw));
  EXPECT_TRUE(test::contains(raw, "data: before shutdown"));
  EXPECT_TRUE(
      raw.ends_with("retry: 5000\nevent: close\ndata: {\"reason\":\"shutdown\"}\n\n\r\n0\r\n\r\n"));
  std::vector<std::string> frames;
  while (auto frame = client.read()) frames.push_back(*frame);
  EXPECT_EQ(client.reason().code, 1001);
  ASSERT_FALSE(frames.empty());
  EXPECT_TRUE(test::contains(frames.back(), "before shutdown"));

  EXPECT_TRUE(h.engine().wait_idle(3s));
  h.engine().stop();
  const auto metrics = h.engine().metrics();
  EXPECT_EQ(metrics.open_sse + metrics.open_websocket, 0u);
  EXPECT_EQ(metrics.closed_total, 2u);
  EXPECT_EQ(h.manager().metrics().active_connections, 0u);
}

TEST(EdgeEngine, StopForceClosesEverythingAndIsIdempotent) {
  EngineHarness h;
  auto sse_pair = loopback_pair();
  auto sse = h.open(Framing::sse);
  h.engine().adopt_sse(sse_pair.server.release(), sse, SseAdopt{true, "", ""});
  auto ws_pair = loopback_pair();
  auto ws = h.open(Framing::websocket);
  h.engine().adopt_websocket(ws_pair.server.release(), ws, {test::upgrade_request(), {}, ""});
  std::string ws_raw;
  ASSERT_TRUE(test::read_until(ws_pair.client.get(), ws_raw, [](const std::string& bytes) {
    return test::contains(bytes, "\r\n\r\n");
  }));

  h.engine().stop();
  EXPECT_TRUE(sse->is_closed());
  EXPECT_TRUE(ws->is_closed());
  EXPECT_EQ(sse->mailbox()->closed_reason(), close_reason::shutdown);
  EXPECT_EQ(ws->mailbox()->closed_reason(), close_reason::shutdown);
  std::string raw;
  EXPECT_TRUE(test::read_to_eof(sse_pair.client.get(), raw, 1s));
  EXPECT_TRUE(test::read_to_eof(ws_pair.client.get(), ws_raw, 1s));
  EXPECT_TRUE(h.engine().wait_idle(0ms));
  const auto inbound = h.engine().take_inbound();
  ASSERT_EQ(inbound.size(), 1u);
  EXPECT_EQ(inbound[0].kind, InboundMessage::Kind::closed);
  EXPECT_EQ(inbound[0].text, "shutdown");

  h.engine().stop();
  auto pair = loopback_pair();
  auto late = h.open(Framing::sse);
  EXPECT_THROW(h.engine().adopt_sse(pair.server.release(), late, {}), Closed);
  EXPECT_FALSE(h.engine().send_text(ws->id(), "[]"));
}

TEST(EdgeEngine, SameConnectionAdoptedTwiceKeepsTheFirst) {
  EngineHarness h;
  auto first = loopback_pair();
  auto second = loopback_pair();
  auto connection = h.open(Framing::websocket);
  h.engine().adopt_websocket(first.server.release(), connection, {test::upgrade_request(), {}, ""});
  EXPECT_THROW(h.engine().adopt_websocket(second.server.release(), connection,
                                          {test::upgrade_request(), {}, ""}),
               InvalidArgument);
  std::string raw;
  EXPECT_TRUE(test::read_to_eof(second.client.get(), raw, 2s));
  EXPECT_TRUE(test::read_until(first.client.get(), raw, [](const std::string& bytes) {
    return test::contains(bytes, "101 Switching Protocols");
  }));
  EXPECT_FALSE(connection->is_closed());

  auto sse = h.open(Framing::sse);
  auto third = loopback_pair();
  auto fourth = loopback_pair();
  h.engine().adopt_sse(third.server.release(), sse, {true, "x", ""});
  h.engine().adopt_sse(fourth.server.release(), sse, {true, "y", ""});
  std::string sse_raw;
  EXPECT_TRUE(test::read_to_eof(fourth.client.get(), sse_raw, 2s));
  EXPECT_TRUE(sse_raw.empty());
  EXPECT_FALSE(sse->is_closed());
  EXPECT_TRUE(test::eventually([&] { return h.engine().metrics().open_sse == 1; }));
}

// Publishers on several threads while connections are adopted, read, and
// closed from both sides; meant for TSan and ASan.
TEST(EdgeEngine, ConcurrentPublishAdoptAndClose) {
  EngineConfig config = EngineHarness::fast_config();
  config.threads = 3;
  config.heartbeat_interval = 20ms;
  config.max_batch_bytes = 4096;
  EngineHarness h{config};

  std::atomic<bool> running{true};
  std::vector<std::thread> publishers;
  for (int t = 0; t < 3; ++t) {
    publishers.emplace_back([&, t] {
      int n = 0;
      while (running.load()) {
        try {
          h.hub().publish(t == 0 ? "c" : "d", "payload " + std::to_string(n++), "message", false);
        } catch (const Closed&) {
          return;
        }
        if (n % 16 == 0) std::this_thread::sleep_for(200us);
      }
    });
  }
  std::atomic<int> sent_ok{0};
  std::thread sender([&] {
    while (running.load()) {
      for (std::uint64_t id = 1; id < 200; ++id) {
        if (h.engine().send_text(id, "[{\"type\":\"pong\"}]")) sent_ok.fetch_add(1);
      }
      (void)h.engine().take_inbound();
      std::this_thread::sleep_for(200us);
    }
  });

  constexpr int kConnections = 60;
  std::vector<test::Fd> kept;
  std::vector<ConnectionPtr> connections;
  for (int i = 0; i < kConnections; ++i) {
    auto pair = loopback_pair();
    const bool websocket = i % 2 == 1;
    auto connection = h.open(websocket ? Framing::websocket : Framing::sse, {"c", "d"});
    if (websocket) {
      h.engine().adopt_websocket(
          pair.server.release(), connection,
          {test::upgrade_request() + test::client_frame(1, "{\"hi\":1}"), {}, "[]"});
    } else {
      h.engine().adopt_sse(pair.server.release(), connection, {i % 4 == 0, "", ""});
    }
    std::string raw;
    (void)test::read_until(
        pair.client.get(), raw, [](const std::string& bytes) { return bytes.size() > 256; }, 1s);
    switch (i % 3) {
      case 0:
        pair.client.reset();  // the client leaves
        break;
      case 1:
        connection->close(close_reason::replaced);  // the host closes it
        kept.push_back(std::move(pair.client));
        break;
      default:
        kept.push_back(std::move(pair.client));  // stays until shutdown
    }
    connections.push_back(std::move(connection));
  }
  // Clients that keep their socket but stop reading: drain a little so
  // writes keep completing for some of them.
  for (auto& fd : kept) {
    std::string raw;
    (void)test::read_some(fd.get(), raw, 1ms);
  }

  h.engine().begin_shutdown();
  h.manager().shutdown();
  running.store(false);
  for (auto& publisher : publishers) publisher.join();
  sender.join();
  kept.clear();  // unblock sessions waiting on close handshakes
  EXPECT_TRUE(h.engine().wait_idle(10s));
  h.engine().stop();

  const auto metrics = h.engine().metrics();
  EXPECT_EQ(metrics.adopted_sse + metrics.adopted_websocket,
            static_cast<std::uint64_t>(kConnections));
  EXPECT_EQ(metrics.closed_total, static_cast<std::uint64_t>(kConnections));
  EXPECT_EQ(metrics.open_sse + metrics.open_websocket, 0u);
  EXPECT_GT(metrics.events_written, 0u);
  for (const auto& connection : connections) EXPECT_TRUE(connection->is_closed());
  EXPECT_EQ(h.manager().metrics().active_connections, 0u);
}

}  // namespace
}  // namespace sessionstream
