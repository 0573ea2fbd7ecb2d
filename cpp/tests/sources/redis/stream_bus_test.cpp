// The Redis Streams bus against a real server: several hubs ("nodes") sharing
// one stream and one id space. The tests that need Redis are skipped unless
// SESSIONSTREAM_TEST_REDIS names one (host:port, e.g. 127.0.0.1:16379 as
// started by scripts/redis.sh). Each test uses its own key prefix.

#include <gtest/gtest.h>
#include <signal.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "sessionstream/common/errors.hpp"
#include "sessionstream/core/hub.hpp"
#include "sessionstream/sources/redis/stream_bus.hpp"
#include "sources/redis/connection.hpp"
#include "test_support.hpp"

#include <hiredis.h>

namespace sessionstream::redis {
namespace {

using namespace std::chrono_literals;
using test::drain_sse;
using test::eventually;
using test::SseMessage;

std::optional<Endpoint> test_endpoint() {
  const char* value = std::getenv("SESSIONSTREAM_TEST_REDIS");
  if (value == nullptr || *value == '\0') return std::nullopt;
  return parse_url(std::string{"redis://"} + value);
}

std::string unique_prefix() {
  std::random_device rd;
  return "ss-bus-test-" + std::to_string(rd()) + std::to_string(rd());
}

HubConfig external_hub(std::size_t history = 1024) {
  HubConfig config;
  config.sequencing = Sequencing::external;
  config.history.max_events = history;
  return config;
}

MailboxOptions mailbox_options() {
  MailboxOptions options;
  options.limits.max_events = 100'000;
  options.limits.max_bytes = 64 << 20;
  return options;
}

// One process of the cluster: a hub fed by its own bus.
struct Node {
  Node(const RedisStreamBusConfig& config, std::size_t history = 1024)
      : hub(external_hub(history)), bus(hub, config) {}
  Hub hub;
  RedisStreamBus bus;
};

// A mailbox and everything it was sent so far.
struct Receiver {
  Receiver(Hub& hub, const std::string& channel,
           std::optional<std::string_view> last_event_id = std::nullopt)
      : mailbox(hub.make_mailbox(mailbox_options(), nullptr)) {
    outcome = hub.subscribe(mailbox, {channel}, last_event_id);
  }

  void pull() {
    for (auto& message : drain_sse(*mailbox)) messages.push_back(std::move(message));
  }
  [[nodiscard]] std::vector<SseMessage> events() const {
    std::vector<SseMessage> out;
    for (const auto& m : messages) {
      if (m.event != "gap" && m.event != "reset") out.push_back(m);
    }
    return out;
  }
  [[nodiscard]] std::size_t count(std::string_view event) const {
    return static_cast<std::size_t>(std::count_if(
        messages.begin(), messages.end(), [&](const SseMessage& m) { return m.event == event; }));
  }
  bool wait_events(std::size_t n, std::chrono::milliseconds timeout = 10s) {
    return eventually(
        [&] {
          pull();
          return events().size() >= n;
        },
        timeout);
  }
  std::vector<std::string> ids() const {
    std::vector<std::string> out;
    for (const auto& m : events()) out.push_back(m.id);
    return out;
  }

  MailboxPtr mailbox;
  ResumeOutcome outcome = ResumeOutcome::live;
  std::vector<SseMessage> messages;
};

std::uint64_t seq_of(const std::string& id) {
  const auto parsed = EventId::parse(id);
  EXPECT_TRUE(parsed.has_value()) << id;
  return parsed ? parsed->seq : 0;
}

std::uint64_t epoch_of(const std::string& id) {
  const auto parsed = EventId::parse(id);
  EXPECT_TRUE(parsed.has_value()) << id;
  return parsed ? parsed->epoch : 0;
}

std::uint64_t skipped(const RedisStreamBusHealth& h, BusSkipKind kind) {
  return h.skipped[static_cast<std::size_t>(kind)];
}

class RedisStreamBusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto endpoint = test_endpoint();
    if (!endpoint) GTEST_SKIP() << "SESSIONSTREAM_TEST_REDIS is not set";
    config_.endpoint = *endpoint;
    config_.key_prefix = unique_prefix();
    admin_ = std::make_unique<Connection>(*endpoint, 2s, 5s);
  }

  void TearDown() override {
    if (admin_) delete_keys();
  }

  void delete_keys() {
    const auto& p = config_.key_prefix;
    (void)admin_->command({"DEL", p + ":events", p + ":seq", p + ":epoch", p + ":epoch_base"});
  }

  Reply command(const std::vector<std::string_view>& args) {
    Reply reply = admin_->command(args);
    EXPECT_NE(reply->type, REDIS_REPLY_ERROR) << std::string(reply->str, reply->len);
    return reply;
  }

  // Appends an entry the way a foreign writer would: the next seq, then
  // XADD with whatever fields (and id suffix) it likes.
  void add_raw(const std::vector<std::string_view>& fields, std::string_view minor = "0") {
    const auto& p = config_.key_prefix;
    const Reply seq = command({"INCR", p + ":seq"});
    const std::string id = std::to_string(seq->integer) + "-" + std::string{minor};
    const std::string key = p + ":events";
    std::vector<std::string_view> args{"XADD", key, id};
    args.insert(args.end(), fields.begin(), fields.end());
    (void)command(args);
  }

  std::uint64_t first_stream_seq() {
    const Reply reply = command({"XRANGE", config_.key_prefix + ":events", "-", "+", "COUNT", "1"});
    if (reply->elements == 0) return 0;
    const std::string id{reply->element[0]->element[0]->str, reply->element[0]->element[0]->len};
    return std::stoull(id.substr(0, id.find('-')));
  }

  // Kills the reader connections of every bus on this prefix.
  int kill_readers() {
    const Reply list = command({"CLIENT", "LIST"});
    std::istringstream lines(std::string{list->str, list->len});
    const std::string name = "name=sessionstream-bus:" + config_.key_prefix + ":reader";
    int killed = 0;
    for (std::string line; std::getline(lines, line);) {
      if (line.find(name + " ") == std::string::npos) continue;
      const auto id_at = line.find("id=") + 3;
      const std::string id = line.substr(id_at, line.find(' ', id_at) - id_at);
      (void)command({"CLIENT", "KILL", "ID", id});
      ++killed;
    }
    return killed;
  }

  std::unique_ptr<Node> started_node(std::size_t history = 1024) {
    auto node = std::make_unique<Node>(config_, history);
    node->bus.start();
    EXPECT_TRUE(node->bus.wait_ready(5s)) << node->bus.health().reason;
    return node;
  }

  RedisStreamBusConfig config_;
  std::unique_ptr<Connection> admin_;
};

TEST_F(RedisStreamBusTest, EveryNodeDeliversEveryEventOnceWithTheSameIds) {
  auto a = started_node();
  auto b = started_node();
  EXPECT_EQ(a->hub.epoch(), b->hub.epoch());
  Receiver on_a(a->hub, "room");
  Receiver on_b(b->hub, "room");
  Receiver other(b->hub, "elsewhere");

  std::vector<std::string> published;
  for (int i = 0; i < 20; ++i) {
    RedisStreamBus& through = i % 2 == 0 ? a->bus : b->bus;
    published.push_back(through.publish("room", "event " + std::to_string(i), "", false));
  }
  ASSERT_TRUE(on_a.wait_events(20));
  ASSERT_TRUE(on_b.wait_events(20));
  std::this_thread::sleep_for(300ms);  // a duplicate would arrive by now
  on_a.pull();
  on_b.pull();
  other.pull();

  EXPECT_EQ(on_a.ids(), published);
  EXPECT_EQ(on_b.ids(), published);
  EXPECT_TRUE(other.messages.empty());
  for (std::size_t i = 0; i < published.size(); ++i) {
    EXPECT_EQ(epoch_of(published[i]), a->hub.epoch());
    if (i > 0) EXPECT_EQ(seq_of(published[i]), seq_of(published[i - 1]) + 1);
    EXPECT_EQ(on_b.events()[i].data, "event " + std::to_string(i));
    EXPECT_EQ(on_b.events()[i].event, "message");
  }
  const auto ha = a->bus.health();
  const auto hb = b->bus.health();
  EXPECT_EQ(ha.status, "healthy");
  EXPECT_EQ(ha.published, 10U);
  EXPECT_EQ(hb.published, 10U);
  EXPECT_EQ(ha.received, 20U);
  EXPECT_EQ(hb.received, 20U);
  EXPECT_EQ(ha.duplicates + ha.lost + hb.duplicates + hb.lost, 0U);
  EXPECT_EQ(ha.head, seq_of(published.back()));
  EXPECT_EQ(ha.epoch, published.front().substr(0, published.front().find('-')));
  EXPECT_EQ(ha.connections, 2U);  // reader and publisher
  EXPECT_EQ(ha.stream_key, config_.key_prefix + ":events");

  a->bus.stop();
  EXPECT_EQ(a->bus.health().status, "stopped");
  EXPECT_EQ(a->bus.health().connections, 0U);
}

TEST_F(RedisStreamBusTest, PublishRefusesDataMarkedJsonThatIsNotBeforeSendingIt) {
  auto a = started_node();
  Receiver on_a(a->hub, "room");
  EXPECT_THROW((void)a->bus.publish("room", "{\"a\":", "", true), InvalidArgument);
  const std::string id = a->bus.publish("room", "{\"a\":1}", "", true);
  ASSERT_TRUE(on_a.wait_events(1));
  on_a.pull();
  EXPECT_EQ(on_a.ids(), std::vector<std::string>{id}) << "the refused event never reached Redis";
}

TEST_F(RedisStreamBusTest, ConcurrentPublishersOnTwoNodesAgreeOnOneOrder) {
  auto a = started_node();
  auto b = started_node();
  Receiver on_a(a->hub, "room");
  Receiver on_b(b->hub, "room");
  constexpr int kEach = 150;
  std::jthread ta([&] {
    for (int i = 0; i < kEach; ++i) (void)a->bus.publish("room", std::to_string(i), "a", false);
  });
  std::jthread tb([&] {
    for (int i = 0; i < kEach; ++i) (void)b->bus.publish("room", std::to_string(i), "b", false);
  });
  ta.join();
  tb.join();
  ASSERT_TRUE(on_a.wait_events(2 * kEach));
  ASSERT_TRUE(on_b.wait_events(2 * kEach));
  EXPECT_EQ(on_a.ids(), on_b.ids());
  const auto ids = on_a.ids();
  for (std::size_t i = 1; i < ids.size(); ++i) EXPECT_EQ(seq_of(ids[i]), seq_of(ids[i - 1]) + 1);
}

TEST_F(RedisStreamBusTest, ResumeOnAnotherNodeFromAnIdSeenOnTheFirstIsExact) {
  auto a = started_node();
  auto b = started_node();
  Receiver on_a(a->hub, "room");
  for (int i = 0; i < 5; ++i) (void)a->bus.publish("room", std::to_string(i), "", false);
  ASSERT_TRUE(on_a.wait_events(5));
  ASSERT_TRUE(eventually([&] { return b->bus.health().head >= seq_of(on_a.ids().back()); }));

  const auto ids = on_a.ids();
  Receiver resumed(b->hub, "room", ids[1]);
  EXPECT_EQ(resumed.outcome, ResumeOutcome::exact);
  resumed.pull();
  EXPECT_EQ(resumed.ids(), std::vector<std::string>(ids.begin() + 2, ids.end()));
  EXPECT_EQ(resumed.count("gap") + resumed.count("reset"), 0U);
}

TEST_F(RedisStreamBusTest, ResumeFromBeforeTheHubHistoryIsReplayedFromTheStream) {
  auto a = started_node();
  auto b = started_node(/*history=*/2);
  Receiver on_a(a->hub, "room");
  for (int i = 0; i < 10; ++i) {
    (void)a->bus.publish("room", std::to_string(i), "", false);
    (void)a->bus.publish("noise", std::to_string(i), "", false);  // other channels interleave
  }
  ASSERT_TRUE(on_a.wait_events(10));
  const auto ids = on_a.ids();
  ASSERT_TRUE(eventually([&] { return b->bus.health().head >= seq_of(ids.back()); }));

  Receiver resumed(b->hub, "room", ids[2]);
  EXPECT_EQ(resumed.outcome, ResumeOutcome::exact);
  resumed.pull();
  EXPECT_EQ(resumed.ids(), std::vector<std::string>(ids.begin() + 3, ids.end()));
  for (std::size_t i = 0; i < resumed.events().size(); ++i) {
    EXPECT_EQ(resumed.events()[i].data, std::to_string(i + 3));
  }
  const auto h = b->bus.health();
  EXPECT_GE(h.replays, 1U);
  EXPECT_GE(h.replayed_events, 5U);
  EXPECT_EQ(h.replay_gaps, 0U);

  // Live events keep coming after the replay, once each.
  const std::string next = a->bus.publish("room", "live", "", false);
  ASSERT_TRUE(resumed.wait_events(8));
  EXPECT_EQ(resumed.ids().back(), next);
  EXPECT_EQ(resumed.events().size(), 8U);
}

TEST_F(RedisStreamBusTest, ResumeFromBeforeTheStreamMaxLenIsAGap) {
  config_.max_len = 10;
  auto a = started_node(/*history=*/2);
  const std::string first = a->bus.publish("room", "first", "", false);
  // MAXLEN ~ trims whole stream nodes (100 entries each by default).
  std::string last;
  for (int i = 0; i < 350; ++i) last = a->bus.publish("room", std::to_string(i), "", false);
  // (The reader may itself fall behind the trimming on a slow machine; that is
  // another test.)
  ASSERT_TRUE(eventually([&] { return a->bus.health().head >= seq_of(last); }));
  ASSERT_GT(first_stream_seq(), seq_of(first) + 1);

  Receiver resumed(a->hub, "room", first);
  EXPECT_EQ(resumed.outcome, ResumeOutcome::gap);
  resumed.pull();
  EXPECT_EQ(resumed.count("gap"), 1U);
  EXPECT_GE(a->bus.health().replay_gaps, 1U);
}

TEST_F(RedisStreamBusTest, ResumeFromAnIdAheadOfTheLocalReaderWaitsForIt) {
  auto a = started_node();
  auto b = started_node();
  Receiver live_b(b->hub, "room");
  const std::string before = a->bus.publish("room", "before", "", false);
  ASSERT_TRUE(live_b.wait_events(1));

  // Readers cut off: they retry after a backoff, so b is behind for a while.
  ASSERT_GE(kill_readers(), 2);
  ASSERT_TRUE(eventually([&] { return !b->bus.health().connected; }, 2s));
  const std::string ahead = a->bus.publish("room", "ahead", "", false);
  ASSERT_LT(seq_of(b->hub.head_id()), seq_of(ahead));

  Receiver resumed(b->hub, "room", ahead);  // the id a client saw through node a
  EXPECT_EQ(resumed.outcome, ResumeOutcome::exact);
  const std::string after = a->bus.publish("room", "after", "", false);
  ASSERT_TRUE(resumed.wait_events(1));
  std::this_thread::sleep_for(300ms);
  resumed.pull();
  EXPECT_EQ(resumed.ids(), std::vector<std::string>{after});
  EXPECT_EQ(resumed.count("reset") + resumed.count("gap"), 0U);

  // The reconnect lost nothing for the live mailbox either.
  ASSERT_TRUE(live_b.wait_events(3));
  EXPECT_EQ(live_b.ids(), (std::vector<std::string>{before, ahead, after}));
  const auto h = b->bus.health();
  EXPECT_GE(h.reconnects, 1U);
  EXPECT_GE(h.errors, 1U);
  EXPECT_FALSE(h.last_error.empty());
  EXPECT_EQ(h.lost, 0U);
}

TEST_F(RedisStreamBusTest, LosingTheRedisDataStartsANewEpochAndOldIdsReset) {
  auto a = started_node();
  auto b = started_node();
  Receiver on_a(a->hub, "room");
  Receiver on_b(b->hub, "room");
  for (int i = 0; i < 3; ++i) (void)a->bus.publish("room", std::to_string(i), "", false);
  ASSERT_TRUE(on_a.wait_events(3));
  ASSERT_TRUE(on_b.wait_events(3));
  const std::uint64_t old_epoch = a->hub.epoch();
  const std::string old_id = on_b.ids().back();

  delete_keys();  // what a Redis restart without persistence leaves
  const std::string fresh = a->bus.publish("room", "new world", "", false);
  EXPECT_NE(epoch_of(fresh), old_epoch);
  EXPECT_EQ(seq_of(fresh), 1U);
  ASSERT_TRUE(eventually(
      [&] { return a->hub.epoch() == epoch_of(fresh) && b->hub.epoch() == epoch_of(fresh); }));
  // Live subscribers of both nodes get the first event of the new epoch.
  ASSERT_TRUE(on_a.wait_events(4));
  ASSERT_TRUE(on_b.wait_events(4));
  EXPECT_EQ(on_b.ids().back(), fresh);

  Receiver resumed(b->hub, "room", old_id);
  EXPECT_EQ(resumed.outcome, ResumeOutcome::reset);
  resumed.pull();
  EXPECT_EQ(resumed.count("reset"), 1U);
  EXPECT_EQ(b->bus.health().epoch, fresh.substr(0, fresh.find('-')));
}

TEST_F(RedisStreamBusTest, AReaderThatFellBehindMaxLenReportsTheLoss) {
  config_.max_len = 10;
  auto a = started_node();
  auto b = started_node();
  Receiver live_b(b->hub, "room");
  (void)a->bus.publish("room", "seen", "", false);
  ASSERT_TRUE(live_b.wait_events(1));

  b->bus.stop();
  for (int i = 0; i < 350; ++i) (void)a->bus.publish("room", std::to_string(i), "", false);
  const std::string last = a->bus.publish("room", "last", "", false);
  ASSERT_GT(first_stream_seq(), 3U);
  b->bus.start();
  ASSERT_TRUE(b->bus.wait_ready(5s));
  ASSERT_TRUE(eventually([&] {
    live_b.pull();
    return !live_b.ids().empty() && live_b.ids().back() == last;
  }));
  EXPECT_EQ(live_b.count("gap"), 1U);
  const auto h = b->bus.health();
  EXPECT_EQ(h.lost, first_stream_seq() - 2);  // seq 1 was read, then first..last arrived
  bool noted = false;
  for (const auto& note : b->bus.take_log_notes()) noted = noted || note.kind == "lost";
  EXPECT_TRUE(noted);
  // What survived in the stream was delivered once each, in order.
  const auto ids = live_b.ids();
  for (std::size_t i = 2; i < ids.size(); ++i) EXPECT_EQ(seq_of(ids[i]), seq_of(ids[i - 1]) + 1);
}

TEST_F(RedisStreamBusTest, GarbageEntriesAreCountedPerKindAndSkipped) {
  auto a = started_node();
  Receiver on_a(a->hub, "room");
  const std::string one = a->bus.publish("room", "one", "", false);
  add_raw({"c", "room", "t", "message", "d", "no j"});
  add_raw({"c", "room", "t", "message", "d", "\xff\xfe", "j", "0"});
  const std::string long_channel(300, 'x');
  add_raw({"c", long_channel, "t", "message", "d", "x", "j", "0"});
  add_raw({"c", "room", "t", "message", "d", "x", "j", "0"}, "1");
  const std::string two = a->bus.publish("room", "{\"n\":2}", "custom", true);
  ASSERT_TRUE(on_a.wait_events(2));
  std::this_thread::sleep_for(300ms);
  on_a.pull();
  EXPECT_EQ(on_a.ids(), (std::vector<std::string>{one, two}));
  EXPECT_EQ(on_a.events()[1].event, "custom");
  EXPECT_EQ(on_a.count("gap"), 0U);

  const auto h = a->bus.health();
  EXPECT_EQ(skipped(h, BusSkipKind::missing_field), 1U);
  EXPECT_EQ(skipped(h, BusSkipKind::invalid_utf8), 1U);
  EXPECT_EQ(skipped(h, BusSkipKind::invalid_channel), 1U);
  EXPECT_EQ(skipped(h, BusSkipKind::bad_id), 1U);
  EXPECT_EQ(h.lost, 0U);
  EXPECT_EQ(h.received, 6U);
  std::vector<std::string> kinds;
  for (const auto& note : a->bus.take_log_notes()) kinds.push_back(note.kind);
  for (const char* kind :
       {"skip.missing_field", "skip.invalid_utf8", "skip.invalid_channel", "skip.bad_id"}) {
    EXPECT_EQ(std::count(kinds.begin(), kinds.end(), kind), 1) << kind;
  }

  // A resume over the garbage skips it too.
  Receiver resumed(a->hub, "room", one);
  EXPECT_EQ(resumed.outcome, ResumeOutcome::exact);
  resumed.pull();
  EXPECT_EQ(resumed.ids(), std::vector<std::string>{two});
}

TEST_F(RedisStreamBusTest, ReplayThroughTheBusSkipsGarbageAndOtherChannels) {
  auto a = started_node(/*history=*/1);
  Receiver on_a(a->hub, "room");
  const std::string one = a->bus.publish("room", "one", "", false);
  add_raw({"c", "room", "t", "message", "d", "\xff", "j", "0"});
  (void)a->bus.publish("noise", "n", "", false);
  const std::string two = a->bus.publish("room", "two", "", false);
  const std::string three = a->bus.publish("room", "three", "", false);
  ASSERT_TRUE(on_a.wait_events(3));

  Receiver resumed(a->hub, "room", one);
  EXPECT_EQ(resumed.outcome, ResumeOutcome::exact);
  resumed.pull();
  EXPECT_EQ(resumed.ids(), (std::vector<std::string>{two, three}));
  EXPECT_GE(a->bus.health().replays, 1U);
}

TEST_F(RedisStreamBusTest, PublishWhenRedisIsUnreachableFailsQuickly) {
  RedisStreamBusConfig config = config_;
  config.endpoint = parse_url("redis://:hunter2@127.0.0.1:1");
  Node node(config);
  node.bus.start();
  EXPECT_FALSE(node.bus.wait_ready(300ms));
  const auto started = std::chrono::steady_clock::now();
  try {
    (void)node.bus.publish("room", "x", "", false);
    ADD_FAILURE() << "publish succeeded without Redis";
  } catch (const Unavailable& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("127.0.0.1:1"), std::string::npos) << what;
    EXPECT_EQ(what.find("hunter2"), std::string::npos) << what;
  }
  EXPECT_LT(std::chrono::steady_clock::now() - started, 500ms);
  const auto h = node.bus.health();
  EXPECT_EQ(h.status, "degraded");
  EXPECT_FALSE(h.connected);
  EXPECT_NE(h.reason.find("127.0.0.1:1"), std::string::npos) << h.reason;
  EXPECT_EQ(h.reason.find("hunter2"), std::string::npos) << h.reason;
  EXPECT_EQ(h.connections, 0U);
  node.bus.stop();
}

TEST_F(RedisStreamBusTest, PublishesAfterTheBusReconnectsGoThrough) {
  auto a = started_node();
  Receiver on_a(a->hub, "room");
  (void)a->bus.publish("room", "0", "", false);
  // Every bus connection of this prefix dropped, publisher included.
  const Reply list = command({"CLIENT", "LIST"});
  std::istringstream lines(std::string{list->str, list->len});
  for (std::string line; std::getline(lines, line);) {
    if (line.find("name=sessionstream-bus:" + config_.key_prefix + ":") == std::string::npos) {
      continue;
    }
    const auto at = line.find("id=") + 3;
    (void)command({"CLIENT", "KILL", "ID", line.substr(at, line.find(' ', at) - at)});
  }
  const std::string next = a->bus.publish("room", "1", "", false);  // one fresh attempt
  ASSERT_TRUE(on_a.wait_events(2));
  EXPECT_EQ(on_a.ids().back(), next);
}

// A redis-server of the test's own, so it can be stopped and restarted.
class PrivateRedis {
 public:
  PrivateRedis() {
    std::random_device rd;
    port_ = 20'000 + static_cast<int>(rd() % 20'000);
  }
  ~PrivateRedis() { stop(); }
  PrivateRedis(const PrivateRedis&) = delete;
  PrivateRedis& operator=(const PrivateRedis&) = delete;

  static bool available() {
    return std::system("command -v redis-server >/dev/null && command -v redis-cli >/dev/null") ==
           0;
  }
  bool start() {
    const std::string command = "redis-server --port " + std::to_string(port_) +
                                " --bind 127.0.0.1 --save '' --appendonly no --daemonize yes"
                                " --logfile /dev/null --dir /tmp --pidfile " +
                                pidfile();
    if (std::system(command.c_str()) != 0) return false;
    running_ = true;
    return eventually([&] { return ping(); }, 5s) && read_pid();
  }
  // Returns once the process is gone, so that a restart can bind the port.
  void stop() {
    if (!running_) return;
    running_ = false;
    const std::string command =
        "redis-cli -p " + std::to_string(port_) + " shutdown nosave >/dev/null 2>&1";
    (void)std::system(command.c_str());
    (void)eventually([&] { return pid_ <= 0 || (::kill(pid_, 0) != 0 && errno == ESRCH); }, 10s);
  }
  [[nodiscard]] Endpoint endpoint() const {
    Endpoint e;
    e.port = static_cast<std::uint16_t>(port_);
    return e;
  }

 private:
  [[nodiscard]] bool ping() const {
    try {
      Connection c(endpoint(), 200ms, 200ms);
      return c.command({"PING"})->type == REDIS_REPLY_STATUS;
    } catch (const Unavailable&) {
      return false;
    }
  }
  [[nodiscard]] std::string pidfile() const {
    return "/tmp/ss-bus-test-redis-" + std::to_string(port_) + ".pid";
  }
  bool read_pid() {
    std::ifstream in(pidfile());
    return static_cast<bool>(in >> pid_) && pid_ > 0;
  }

  int port_ = 0;
  pid_t pid_ = 0;
  bool running_ = false;
};

TEST_F(RedisStreamBusTest, ARedisRestartWithoutPersistenceStartsANewEpoch) {
  if (!PrivateRedis::available()) GTEST_SKIP() << "redis-server / redis-cli not on PATH";
  PrivateRedis server;
  ASSERT_TRUE(server.start());
  config_.endpoint = server.endpoint();
  auto a = started_node();
  auto b = started_node();
  Receiver on_a(a->hub, "room");
  Receiver on_b(b->hub, "room");
  (void)a->bus.publish("room", "0", "", false);
  const std::string old_id = b->bus.publish("room", "1", "", false);
  ASSERT_TRUE(on_a.wait_events(2));
  ASSERT_TRUE(on_b.wait_events(2));
  const std::uint64_t old_epoch = a->hub.epoch();

  server.stop();
  ASSERT_TRUE(eventually([&] { return !a->bus.health().connected && !b->bus.health().connected; }));
  const auto started = std::chrono::steady_clock::now();
  EXPECT_THROW((void)a->bus.publish("room", "lost", "", false), Unavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 1s);
  const auto down = a->bus.health();
  EXPECT_EQ(down.status, "degraded");
  EXPECT_FALSE(down.reason.empty());

  ASSERT_TRUE(server.start());
  ASSERT_TRUE(
      eventually([&] { return a->hub.epoch() != old_epoch && b->hub.epoch() != old_epoch; }, 10s));
  EXPECT_EQ(a->hub.epoch(), b->hub.epoch());
  ASSERT_TRUE(a->bus.wait_ready(5s));
  const std::string fresh = b->bus.publish("room", "2", "", false);
  EXPECT_EQ(epoch_of(fresh), a->hub.epoch());
  EXPECT_EQ(seq_of(fresh), 1U);
  ASSERT_TRUE(on_a.wait_events(3));
  ASSERT_TRUE(on_b.wait_events(3));
  EXPECT_EQ(on_a.ids().back(), fresh);
  EXPECT_EQ(on_b.ids().back(), fresh);

  Receiver resumed(a->hub, "room", old_id);
  EXPECT_EQ(resumed.outcome, ResumeOutcome::reset);
  EXPECT_GE(a->bus.health().reconnects, 1U);
  EXPECT_EQ(a->bus.health().status, "healthy");
}

// No server needed from here on.

TEST(RedisStreamBusConfigTest, RefusesAHubThatSequencesLocally) {
  Hub hub;  // local sequencing
  try {
    RedisStreamBus bus(hub, {});
    ADD_FAILURE() << "constructed";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string{e.what()}.find("external"), std::string::npos) << e.what();
  }
}

TEST(RedisStreamBusConfigTest, RefusesBadSettings) {
  Hub hub(external_hub());
  RedisStreamBusConfig config;
  config.max_len = 0;
  EXPECT_THROW(RedisStreamBus(hub, config), InvalidArgument);
  config = {};
  config.key_prefix = "";
  EXPECT_THROW(RedisStreamBus(hub, config), InvalidArgument);
  config.key_prefix = "has space";
  EXPECT_THROW(RedisStreamBus(hub, config), InvalidArgument);
  config = {};
  config.catch_up_timeout = 0ms;
  EXPECT_THROW(RedisStreamBus(hub, config), InvalidArgument);
}

TEST(RedisStreamBusConfigTest, PublishValidatesBeforeTouchingRedis) {
  Hub hub(external_hub());
  RedisStreamBus bus(hub, {});  // never started: Redis is not needed to refuse these
  EXPECT_THROW((void)bus.publish("bad channel", "x", "", false), InvalidArgument);
  EXPECT_THROW((void)bus.publish("room", "x", "bad\ntype", false), InvalidArgument);
  EXPECT_THROW((void)bus.publish("room", "\xff", "", false), InvalidUtf8);
  EXPECT_THROW(
      (void)bus.publish("room", std::string(hub.config().max_event_bytes + 1, 'x'), "", false),
      PayloadTooLarge);
  EXPECT_THROW((void)bus.publish("room", "x", "", false), Unavailable);
  const auto h = bus.health();
  EXPECT_EQ(h.status, "stopped");
  EXPECT_EQ(h.connections, 0U);
}

}  // namespace
}  // namespace sessionstream::redis
