#include <gtest/gtest.h>

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
using edge::EngineConfig;
using edge::InboundMessage;
using edge::WebSocketAdopt;
using test::EngineHarness;
using test::loopback_pair;
using test::WsClient;
namespace websocket = boost::beast::websocket;

constexpr std::string_view kWelcome = R"([{"type":"welcome","session_id":"s"}])";

// Opens a WebSocket connection, runs a Beast client handshake against the
// engine and reads the welcome frame.
struct Adopted {
  ConnectionPtr connection;
  std::unique_ptr<WsClient> client;
  std::optional<WsClient::Response> response;
};

Adopted adopt(EngineHarness& h, WebSocketAdopt options = {},
              std::string welcome = std::string{kWelcome}, int client_rcvbuf = 0,
              int server_sndbuf = 0) {
  Adopted result;
  auto pair = loopback_pair(client_rcvbuf, server_sndbuf);
  result.connection = h.open(Framing::websocket);
  result.client = std::make_unique<WsClient>(std::move(pair.client));
  options.welcome = std::move(welcome);
  result.response = result.client->handshake(pair.server.get(), [&](std::string request) {
    options.request = std::move(request);
    h.engine().adopt_websocket(pair.server.release(), result.connection, std::move(options));
  });
  return result;
}

std::vector<InboundMessage> inbound(EngineHarness& h, std::size_t count) {
  std::vector<InboundMessage> all;
  (void)test::eventually([&] {
    for (auto& message : h.engine().take_inbound()) all.push_back(std::move(message));
    return all.size() >= count;
  });
  return all;
}

TEST(EdgeWebSocket, HandshakeCarriesExtraHeadersThenWelcomeThenEvents) {
  EngineHarness h;
  WebSocketAdopt options;
  options.headers = {{"set-cookie", "sid=abc; Path=/; HttpOnly"},
                     {"set-cookie", "theme=dark"},
                     {"x-session-id", "abc"}};
  auto a = adopt(h, std::move(options));
  ASSERT_TRUE(a.response) << a.client->error().message();
  EXPECT_EQ(a.response->result_int(), 101);
  EXPECT_EQ(std::distance(a.response->equal_range("set-cookie").first,
                          a.response->equal_range("set-cookie").second),
            2);
  EXPECT_EQ(a.response->at("x-session-id"), "abc");
  EXPECT_EQ(a.response->at(boost::beast::http::field::server), "sessionstream");
  EXPECT_EQ(a.client->read(), std::string{kWelcome});

  h.hub().publish("c", R"({"n":1})", "update", true);
  const auto frame = a.client->read();
  ASSERT_TRUE(frame);
  EXPECT_TRUE(test::is_valid_json(*frame)) << *frame;
  EXPECT_TRUE(frame->starts_with("[{\"type\":\"event\"")) << *frame;
  EXPECT_TRUE(test::contains(*frame, "\"data\":{\"n\":1}")) << *frame;
  EXPECT_FALSE(a.client->last_binary());
  EXPECT_EQ(h.engine().metrics().adopted_websocket, 1u);
  EXPECT_EQ(h.engine().metrics().open_websocket, 1u);
}

TEST(EdgeWebSocket, QueuedEventsArriveAsOneJsonArrayFrame) {
  EngineHarness h;
  auto pair = loopback_pair();
  auto connection = h.open(Framing::websocket);
  for (int i = 0; i < 20; ++i) h.hub().publish("c", "text " + std::to_string(i), "message", false);
  WsClient client{std::move(pair.client)};
  ASSERT_TRUE(client.handshake(pair.server.get(), [&](std::string request) {
    h.engine().adopt_websocket(pair.server.release(), connection,
                               WebSocketAdopt{std::move(request), {}, ""});
  }));
  const auto frame = client.read();
  ASSERT_TRUE(frame);
  EXPECT_TRUE(test::is_valid_json(*frame));
  EXPECT_EQ(test::count_of(*frame, "\"type\":\"event\""), 20u);
  EXPECT_TRUE(test::eventually([&] { return h.engine().metrics().events_written == 20; }));
}

TEST(EdgeWebSocket, DirectSendTextGoesBeforeMailboxFrames) {
  EngineHarness h;
  // A welcome far larger than the socket buffers: its write is in flight
  // while the reply and the events are queued.
  const std::string welcome = "[\"" + std::string(4 << 20, 'w') + "\"]";
  auto a = adopt(h, {}, welcome, 8192, 8192);
  ASSERT_TRUE(a.response);
  h.hub().publish("c", "after", "message", false);
  EXPECT_TRUE(h.engine().send_text(a.connection->id(), R"([{"type":"pong"}])"));
  EXPECT_EQ(a.client->read(), welcome);
  EXPECT_EQ(a.client->read(), std::string{R"([{"type":"pong"}])"});
  const auto events = a.client->read();
  ASSERT_TRUE(events);
  EXPECT_TRUE(test::contains(*events, "\"data\":\"after\"")) << *events;
}

TEST(EdgeWebSocket, SendTextIsFalseForUnknownSseAndClosedConnections) {
  EngineHarness h;
  EXPECT_FALSE(h.engine().send_text(987654, "[]"));
  auto pair = loopback_pair();
  auto sse = h.open(Framing::sse);
  h.engine().adopt_sse(pair.server.release(), sse, {});
  EXPECT_FALSE(h.engine().send_text(sse->id(), "[]"));

  auto a = adopt(h);
  ASSERT_TRUE(a.response);
  EXPECT_TRUE(h.engine().send_text(a.connection->id(), "[1]"));
  a.client.reset();
  EXPECT_TRUE(test::eventually([&] { return !h.engine().send_text(a.connection->id(), "[2]"); }));
  EXPECT_TRUE(a.connection->is_closed());
}

TEST(EdgeWebSocket, OutboxOverflowClosesAsSlowConsumer) {
  EngineConfig config = EngineHarness::fast_config();
  config.outbox_max_frames = 2;
  EngineHarness h{config};
  const std::string welcome = "[\"" + std::string(4 << 20, 'w') + "\"]";
  auto a = adopt(h, {}, welcome, 8192, 8192);
  ASSERT_TRUE(a.response);
  const auto id = a.connection->id();
  EXPECT_TRUE(h.engine().send_text(id, "[1]"));
  EXPECT_TRUE(h.engine().send_text(id, "[2]"));
  EXPECT_FALSE(h.engine().send_text(id, "[3]"));
  EXPECT_EQ(a.connection->mailbox()->closed_reason(), close_reason::slow_consumer);
  EXPECT_TRUE(test::eventually([&] { return a.connection->is_closed(); }));
  const auto messages = inbound(h, 1);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].kind, InboundMessage::Kind::closed);
  EXPECT_EQ(messages[0].text, "slow_consumer");
  EXPECT_TRUE(h.engine().wait_idle(2s));
}

TEST(EdgeWebSocket, InboundMessagesAndClosedNoticeMarkTheHostNotifier) {
  EngineHarness h;
  auto a = adopt(h);
  ASSERT_TRUE(a.response);
  ASSERT_TRUE(a.client->read());  // welcome
  EXPECT_TRUE(h.host()->take_ready().empty());

  a.client->write(R"({"type":"ping","ts":1})");
  a.client->write(R"({"type":"chat","text":"héllo"})");
  pollfd p{h.host()->fd(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 2000), 1);
  EXPECT_TRUE(test::eventually([&] {
    const auto ready = h.host()->take_ready();
    return std::find(ready.begin(), ready.end(), edge::Engine::kInboundToken) != ready.end();
  }));
  auto messages = inbound(h, 2);
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[0].connection_id, a.connection->id());
  EXPECT_EQ(messages[0].kind, InboundMessage::Kind::text);
  EXPECT_EQ(messages[0].text, R"({"type":"ping","ts":1})");
  EXPECT_EQ(messages[1].text, R"({"type":"chat","text":"héllo"})");
  EXPECT_EQ(h.engine().metrics().ws_messages_in, 2u);

  EXPECT_TRUE(a.client->close());
  messages = inbound(h, 1);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].kind, InboundMessage::Kind::closed);
  EXPECT_EQ(messages[0].text, "client_gone");
  EXPECT_TRUE(a.connection->is_closed());
  EXPECT_EQ(a.connection->mailbox()->closed_reason(), close_reason::client_gone);
  EXPECT_TRUE(h.engine().wait_idle(2s));
}

TEST(EdgeWebSocket, TakeInboundHonoursMax) {
  EngineHarness h;
  auto a = adopt(h);
  ASSERT_TRUE(a.response);
  for (int i = 0; i < 5; ++i) a.client->write("{\"i\":" + std::to_string(i) + "}");
  EXPECT_TRUE(test::eventually([&] { return h.engine().metrics().ws_messages_in == 5; }));
  EXPECT_EQ(h.engine().take_inbound(3).size(), 3u);
  EXPECT_EQ(h.engine().take_inbound(3).size(), 2u);
}

TEST(EdgeWebSocket, RateLimitedMessagesGetAnErrorFrame) {
  EngineConfig config = EngineHarness::fast_config();
  config.ws_messages_per_second = 0.5;
  config.ws_message_burst = 2;
  EngineHarness h{config};
  auto a = adopt(h);
  ASSERT_TRUE(a.response);
  ASSERT_TRUE(a.client->read());  // welcome
  for (const char* text : {"{\"n\":1}", "{\"n\":2}", "{\"n\":3}"}) a.client->write(text);
  const auto frame = a.client->read();
  ASSERT_TRUE(frame);
  EXPECT_TRUE(frame->starts_with(
      R"([{"type":"error","error":"rate_limited","detail":"more than 0.5 messages per second (burst 2); message dropped","retry_after":)"))
      << *frame;
  EXPECT_TRUE(test::is_valid_json(*frame));
  // About two seconds until the next token, rounded to milliseconds.
  const auto retry = std::stod(frame->substr(frame->find("\"retry_after\":") + 14));
  EXPECT_GT(retry, 1.5);
  EXPECT_LE(retry, 2.0);
  EXPECT_EQ(inbound(h, 2).size(), 2u);
  EXPECT_EQ(h.engine().metrics().ws_rate_limited, 1u);
}

TEST(EdgeWebSocket, OversizedAndBinaryMessagesGetErrorFrames) {
  EngineConfig config = EngineHarness::fast_config();
  config.ws_max_message_bytes = 100;
  EngineHarness h{config};
  auto a = adopt(h);
  ASSERT_TRUE(a.response);
  ASSERT_TRUE(a.client->read());  // welcome
  a.client->write(std::string(101, 'x'));
  EXPECT_EQ(
      a.client->read(),
      std::string{
          R"([{"type":"error","error":"message_too_large","detail":"message of 101 bytes exceeds the limit of 100 bytes","limit":100}])"});
  a.client->write("binary", true);
  EXPECT_EQ(
      a.client->read(),
      std::string{
          R"([{"type":"error","error":"binary_not_supported","detail":"send JSON objects as text frames"}])"});
  a.client->write(std::string(200, '\x01'), true);
  const auto too_large = a.client->read();
  ASSERT_TRUE(too_large);
  EXPECT_TRUE(test::contains(*too_large, "message of 200 bytes exceeds the limit of 100 bytes"));
  a.client->write(std::string(100, 'y'));
  const auto messages = inbound(h, 1);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].text, std::string(100, 'y'));
  EXPECT_EQ(h.engine().metrics().ws_oversized, 2u);
  EXPECT_FALSE(a.connection->is_closed());
}

TEST(EdgeWebSocket, FullInboundQueueRepliesBusy) {
  EngineConfig config = EngineHarness::fast_config();
  config.inbound_max_messages = 2;
  EngineHarness h{config};
  auto a = adopt(h);
  ASSERT_TRUE(a.response);
  ASSERT_TRUE(a.client->read());  // welcome
  for (int i = 0; i < 3; ++i) a.client->write("{}");
  EXPECT_EQ(
      a.client->read(),
      std::string{
          R"([{"type":"error","error":"busy","detail":"the server is overloaded; message dropped"}])"});
  EXPECT_EQ(h.engine().metrics().inbound_dropped, 1u);
  EXPECT_EQ(h.engine().take_inbound().size(), 2u);
  // Closed notices are never refused.
  a.client.reset();
  const auto messages = inbound(h, 1);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].kind, InboundMessage::Kind::closed);
}

struct CloseCase {
  std::string reason;
  int code;
};

TEST(EdgeWebSocket, CloseCodePerReason) {
  EngineHarness h;
  for (const CloseCase& c : std::vector<CloseCase>{{"shutdown", 1001},
                                                   {"replaced", 4000},
                                                   {"slow_consumer", 4001},
                                                   {"session_cleanup", 4002},
                                                   {"client_gone", 4003},
                                                   {"kicked", 1000}}) {
    SCOPED_TRACE(c.reason);
    auto a = adopt(h);
    ASSERT_TRUE(a.response);
    ASSERT_TRUE(a.client->read());  // welcome
    a.connection->mailbox()->close(c.reason);
    EXPECT_FALSE(a.client->read());
    EXPECT_EQ(a.client->error(), websocket::error::closed) << a.client->error().message();
    EXPECT_EQ(a.client->reason().code, c.code);
    EXPECT_EQ(std::string(a.client->reason().reason.data(), a.client->reason().reason.size()),
              c.reason);
    const auto messages = inbound(h, 1);
    ASSERT_EQ(messages.size(), 1u);
    EXPECT_EQ(messages[0].kind, InboundMessage::Kind::closed);
    EXPECT_EQ(messages[0].text, c.reason);
    EXPECT_TRUE(test::eventually([&] { return a.connection->is_closed(); }));
  }
  EXPECT_TRUE(h.engine().wait_idle(2s));
}

TEST(EdgeWebSocket, LongCloseReasonIsCutToWholeCharacters) {
  EngineHarness h;
  auto a = adopt(h);
  ASSERT_TRUE(a.response);
  ASSERT_TRUE(a.client->read());
  std::string reason;
  for (int i = 0; i < 50; ++i) reason += "\xC3\xA9";  // 100 bytes
  reason = "x" + reason + reason;                     // 201 bytes
  a.connection->mailbox()->close(reason);
  EXPECT_FALSE(a.client->read());
  EXPECT_EQ(a.client->error(), websocket::error::closed);
  EXPECT_EQ(a.client->reason().code, 1000);
  EXPECT_EQ(a.client->reason().reason.size(), 123u);
}

TEST(EdgeWebSocket, ShutdownSendsGoingAway) {
  EngineHarness h;
  auto a = adopt(h);
  ASSERT_TRUE(a.response);
  h.engine().begin_shutdown();
  h.manager().shutdown();
  std::optional<std::string> frame;
  do {
    frame = a.client->read();
  } while (frame);
  EXPECT_EQ(a.client->error(), websocket::error::closed);
  EXPECT_EQ(a.client->reason().code, 1001);
  EXPECT_TRUE(h.engine().wait_idle(3s));
}

TEST(EdgeWebSocket, HandshakeFailureClosesTheConnection) {
  EngineHarness h;
  auto pair = loopback_pair();
  auto connection = h.open(Framing::websocket);
  h.engine().adopt_websocket(pair.server.release(), connection,
                             WebSocketAdopt{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", {}, ""});
  std::string raw;
  EXPECT_TRUE(test::read_to_eof(pair.client.get(), raw));
  EXPECT_FALSE(test::contains(raw, "101 Switching"));
  EXPECT_TRUE(test::eventually([&] { return connection->is_closed(); }));
  const auto messages = inbound(h, 1);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].kind, InboundMessage::Kind::closed);
}

TEST(EdgeWebSocket, HeaderWithLineBreakIsRefused) {
  EngineHarness h;
  auto pair = loopback_pair();
  auto connection = h.open(Framing::websocket);
  EXPECT_THROW(h.engine().adopt_websocket(
                   pair.server.release(), connection,
                   WebSocketAdopt{test::upgrade_request(), {{"x-evil", "a\r\nInjected: 1"}}, ""}),
               InvalidArgument);
  std::string raw;
  EXPECT_TRUE(test::read_to_eof(pair.client.get(), raw)) << "the fd was closed";
  EXPECT_TRUE(raw.empty());
}

// A raw client: the request bytes are given to the engine as the host would,
// frames are written by hand, so protocol violations can be sent.
class RawWebSocket : public ::testing::Test {
 protected:
  void open(EngineConfig config = EngineHarness::fast_config(), std::string extra = {}) {
    h = std::make_unique<EngineHarness>(config);
    auto pair = loopback_pair();
    connection = h->open(Framing::websocket);
    client = std::move(pair.client);
    h->engine().adopt_websocket(pair.server.release(), connection,
                                WebSocketAdopt{test::upgrade_request() + extra, {}, ""});
    ASSERT_TRUE(test::read_until(client.get(), buffer, [](const std::string& bytes) {
      return test::contains(bytes, "\r\n\r\n");
    }));
    ASSERT_TRUE(buffer.starts_with("HTTP/1.1 101")) << buffer;
    EXPECT_TRUE(test::contains(buffer, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));  // RFC 6455 sample key
    buffer.erase(0, buffer.find("\r\n\r\n") + 4);
  }

  std::optional<test::WsFrame> next() { return test::read_frame(client.get(), buffer); }

  // Reads frames until a close frame; its code (-1 when none came).
  int close_code() {
    while (auto frame = next()) {
      if (frame->opcode == 8) return test::close_code_of(*frame);
    }
    return -1;
  }

  void send(const std::string& bytes) { test::send_all(client.get(), bytes); }

  // After the close frames the server half-closes; the client then closes
  // its end as RFC 6455 clients do, and the session ends.
  void expect_closed_connection() {
    std::string rest;
    EXPECT_TRUE(test::read_to_eof(client.get(), rest));
    client.reset();
    EXPECT_TRUE(test::eventually([&] { return connection->is_closed(); }));
  }

  // What the host was told, up to the closed notice: the session queues it
  // just after the connection counts as closed.
  std::vector<InboundMessage> inbound_until_closed() {
    std::vector<InboundMessage> messages;
    (void)test::eventually([&] {
      for (auto& message : h->engine().take_inbound()) messages.push_back(std::move(message));
      return !messages.empty() && messages.back().kind == InboundMessage::Kind::closed;
    });
    return messages;
  }

  std::unique_ptr<EngineHarness> h;
  ConnectionPtr connection;
  test::Fd client;
  std::string buffer;
};

TEST_F(RawWebSocket, UnmaskedClientFrameIsAProtocolError) {
  open();
  send(test::client_frame(1, "{}", true, false));
  EXPECT_EQ(close_code(), 1002);
  expect_closed_connection();
}

TEST_F(RawWebSocket, ReservedBitsAreAProtocolError) {
  open();
  send(test::client_frame(1, "{}", true, true, 4));  // RSV1 without an extension
  EXPECT_EQ(close_code(), 1002);
  expect_closed_connection();
}

TEST_F(RawWebSocket, ReservedOpcodeIsAProtocolError) {
  open();
  send(test::client_frame(3, "x"));
  EXPECT_EQ(close_code(), 1002);
  expect_closed_connection();
}

TEST_F(RawWebSocket, InvalidUtf8TextIs1007) {
  open();
  send(test::client_frame(1, "\"\xC3\x28\""));
  EXPECT_EQ(close_code(), 1007);
  expect_closed_connection();
  const auto messages = inbound_until_closed();
  ASSERT_EQ(messages.size(), 1u);  // only the closed notice
  EXPECT_EQ(messages[0].text, "invalid_utf8");
}

// Beast 1.74 checks UTF-8 frame by frame and misses a sequence that an empty
// final fragment leaves unfinished (found by the ws_frame fuzzer).
TEST_F(RawWebSocket, Utf8SequenceCutOffByAnEmptyFinalFragmentIs1007) {
  open();
  send(test::client_frame(1, "\xC4", false));
  send(test::client_frame(0, "", true));
  EXPECT_EQ(close_code(), 1007);
  expect_closed_connection();
  const auto messages = inbound_until_closed();
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].kind, InboundMessage::Kind::closed);
  EXPECT_EQ(messages[0].text, "invalid_utf8");
}

TEST_F(RawWebSocket, MessageBeyondTheHardLimitIs1009) {
  EngineConfig config = EngineHarness::fast_config();
  config.ws_max_message_bytes = 512;
  config.ws_hard_max_message_bytes = 1024;
  open(config);
  send(test::client_frame(1, std::string(2000, 'x')));
  EXPECT_EQ(close_code(), 1009);
  expect_closed_connection();
}

TEST_F(RawWebSocket, FragmentedMessageWithInterleavedPing) {
  open();
  send(test::client_frame(1, "{\"te", false));
  send(test::client_frame(9, "are you there"));
  send(test::client_frame(0, "xt\":", false));
  send(test::client_frame(0, "1}", true));
  const auto pong = next();
  ASSERT_TRUE(pong);
  EXPECT_EQ(pong->opcode, 0xA);
  EXPECT_EQ(pong->payload, "are you there");
  std::vector<InboundMessage> messages;
  ASSERT_TRUE(test::eventually([&] {
    messages = h->engine().take_inbound();
    return !messages.empty();
  }));
  EXPECT_EQ(messages[0].text, "{\"text\":1}");
}

TEST_F(RawWebSocket, BytesAfterTheRequestAreFrameData) {
  open(EngineHarness::fast_config(), test::client_frame(1, "{\"early\":true}"));
  std::vector<InboundMessage> messages;
  ASSERT_TRUE(test::eventually([&] {
    messages = h->engine().take_inbound();
    return !messages.empty();
  }));
  EXPECT_EQ(messages[0].text, "{\"early\":true}");
}

TEST_F(RawWebSocket, ClientCloseIsAnswered) {
  open();
  send(test::client_frame(8, std::string{"\x03\xE8", 2} + "bye"));
  EXPECT_EQ(close_code(), 1000);
  expect_closed_connection();
  EXPECT_EQ(connection->mailbox()->closed_reason(), close_reason::client_gone);
}

TEST_F(RawWebSocket, PeerThatKeepsItsSocketAfterAProtocolErrorIsCutOff) {
  EngineConfig config = EngineHarness::fast_config();
  config.send_timeout = 400ms;  // ticks every 100 ms
  open(config);
  send(test::client_frame(1, "{}", true, false));
  EXPECT_EQ(close_code(), 1002);
  const auto before = std::chrono::steady_clock::now();
  EXPECT_TRUE(test::eventually([&] { return connection->is_closed(); }, 4s));
  EXPECT_LT(std::chrono::steady_clock::now() - before, 3s);
  EXPECT_EQ(connection->mailbox()->closed_reason(), close_reason::client_gone);
}

TEST_F(RawWebSocket, KeepAlivePingsThenIdleTimeout) {
  EngineConfig config = EngineHarness::fast_config();
  config.ws_idle_timeout = 400ms;
  open(config);
  const auto ping = next();
  ASSERT_TRUE(ping);
  EXPECT_EQ(ping->opcode, 9) << "a ping at half the idle timeout";
  // Never answered: the connection ends once the idle timeout has passed.
  EXPECT_TRUE(test::eventually([&] { return connection->is_closed(); }, 3s));
  EXPECT_EQ(connection->mailbox()->closed_reason(), close_reason::client_gone);
}

TEST_F(RawWebSocket, PeerVanishingIsDetectedAtOnce) {
  open();
  client.reset();
  EXPECT_TRUE(test::eventually([&] { return connection->is_closed(); }, 1s));
  EXPECT_EQ(connection->mailbox()->closed_reason(), close_reason::client_gone);
}

TEST_F(RawWebSocket, CloseHandshakeIsBoundedWhenThePeerNeverAnswers) {
  open();
  connection->mailbox()->close(close_reason::replaced);
  EXPECT_EQ(close_code(), 4000);
  // The client never answers the close frame; the engine gives up after ~2 s.
  const auto before = std::chrono::steady_clock::now();
  EXPECT_TRUE(test::eventually([&] { return connection->is_closed(); }, 4s));
  std::string rest;
  EXPECT_TRUE(test::read_to_eof(client.get(), rest, 4s));
  EXPECT_LT(std::chrono::steady_clock::now() - before, 3500ms);
}

}  // namespace
}  // namespace sessionstream
