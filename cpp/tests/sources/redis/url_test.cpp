// Redis URLs: every accepted form, every refusal (the password never in a
// message), the redacted form; and the Connection against a real server when
// SESSIONSTREAM_TEST_REDIS names one (host:port, as scripts/redis.sh address
// prints).

#include <gtest/gtest.h>
#include <hiredis.h>

#include <cstdlib>
#include <random>
#include <thread>

#include "sessionstream/common/errors.hpp"
#include "sessionstream/sources/redis/config.hpp"
#include "sources/redis/connection.hpp"

namespace sessionstream::redis {
namespace {

using namespace std::chrono_literals;

std::string refusal(std::string_view url) {
  try {
    (void)parse_url(url);
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  ADD_FAILURE() << "accepted: " << url;
  return {};
}

TEST(RedisUrl, HostOnly) {
  const Endpoint e = parse_url("redis://cache.internal");
  EXPECT_EQ(e.host, "cache.internal");
  EXPECT_EQ(e.port, 6379);
  EXPECT_EQ(e.database, 0);
  EXPECT_TRUE(e.username.empty());
  EXPECT_TRUE(e.password.empty());
  EXPECT_EQ(e.redacted(), "redis://cache.internal:6379/0");
}

TEST(RedisUrl, PortAndDatabase) {
  const Endpoint e = parse_url("redis://127.0.0.1:16379/15");
  EXPECT_EQ(e.host, "127.0.0.1");
  EXPECT_EQ(e.port, 16379);
  EXPECT_EQ(e.database, 15);
  EXPECT_EQ(parse_url("redis://h/").database, 0);
  EXPECT_EQ(parse_url("redis://h:1").port, 1);
  EXPECT_EQ(parse_url("redis://h:65535/0").port, 65535);
}

TEST(RedisUrl, PasswordOnly) {
  const Endpoint both = parse_url("redis://:s3cret@h:1234/2");
  EXPECT_TRUE(both.username.empty());
  EXPECT_EQ(both.password, "s3cret");
  EXPECT_EQ(both.redacted(), "redis://:***@h:1234/2");
  // redis-cli's reading of a single userinfo part: the password.
  const Endpoint bare = parse_url("redis://s3cret@h");
  EXPECT_TRUE(bare.username.empty());
  EXPECT_EQ(bare.password, "s3cret");
}

TEST(RedisUrl, UserAndPasswordPercentDecoded) {
  const Endpoint e = parse_url("redis://app%40team:p%3Ass%2Fw%25rd@h:6380/3");
  EXPECT_EQ(e.username, "app@team");
  EXPECT_EQ(e.password, "p:ss/w%rd");
  EXPECT_EQ(e.redacted(), "redis://app@team:***@h:6380/3");
  EXPECT_EQ(e.redacted().find("p:ss"), std::string::npos);
  // An unescaped '@' in the password: the host starts after the last one.
  const Endpoint at = parse_url("redis://u:pa@ss@host");
  EXPECT_EQ(at.password, "pa@ss");
  EXPECT_EQ(at.host, "host");
}

TEST(RedisUrl, Ipv6) {
  const Endpoint e = parse_url("redis://[::1]:7000/1");
  EXPECT_EQ(e.host, "::1");
  EXPECT_EQ(e.port, 7000);
  EXPECT_EQ(e.redacted(), "redis://[::1]:7000/1");
  EXPECT_EQ(parse_url("redis://[fe80::2]").port, 6379);
}

TEST(RedisUrl, RefusesTlsWithTheWayOut) {
  const std::string message = refusal("rediss://:hunter2@h:6380");
  EXPECT_NE(message.find("rediss:// (TLS) is not supported"), std::string::npos) << message;
  EXPECT_NE(message.find("stunnel"), std::string::npos) << message;
  EXPECT_EQ(message.find("hunter2"), std::string::npos) << message;
}

TEST(RedisUrl, RefusesUnknownSchemesNamingTheAcceptedOne) {
  for (const auto* url : {"http://h:6379", "unix:///tmp/redis.sock", "h:6379", "REDIS//h", ""}) {
    const std::string message = refusal(url);
    EXPECT_NE(message.find("redis://"), std::string::npos) << url << ": " << message;
  }
  EXPECT_EQ(refusal("http://u:hunter2@h").find("hunter2"), std::string::npos);
}

TEST(RedisUrl, RefusesEveryMalformedPart) {
  const std::pair<const char*, const char*> cases[] = {
      {"redis://", "no host"},
      {"redis://:hunter2@", "no host"},
      {"redis://:hunter2@:6379", "no host"},
      {"redis://h:0", "port"},
      {"redis://h:65536", "port"},
      {"redis://h:-1", "port"},
      {"redis://h:12ab", "port"},
      {"redis://h:", "empty port"},
      {"redis://h/16", "database"},
      {"redis://h/-1", "database"},
      {"redis://h/1x", "database"},
      {"redis://h/ 1", "database"},
      {"redis://h/0/1", "database"},
      {"redis://[::1", "IPv6"},
      {"redis://[::1]x", "IPv6"},
      {"redis://::1:6379", "IPv6"},
      {"redis://h?db=1", "query"},
      {"redis://:hunter2@h/0?timeout=1", "query"},
      {"redis://h#x", "query"},
      {"redis://:hunt%zzer2@h", "percent-escape"},
      {"redis://:hunter2%4@h", "percent-escape"},
      {"redis://user:@h", "needs a password"},
      {"redis://bad host", "host"},
  };
  for (const auto& [url, expected] : cases) {
    const std::string message = refusal(url);
    EXPECT_NE(message.find(expected), std::string::npos) << url << ": " << message;
    EXPECT_EQ(message.find("hunter2"), std::string::npos) << url << ": " << message;
    EXPECT_EQ(message.find("hunt"), std::string::npos) << url << ": " << message;
  }
}

TEST(RedisBackoff, DoublesToTheCapWithJitter) {
  Backoff backoff{100ms, 1'000ms};
  const long long bases[] = {100, 200, 400, 800, 1000, 1000};
  for (const long long base : bases) {
    const auto wait = backoff.next().count();
    EXPECT_GE(wait, base * 8 / 10);
    EXPECT_LE(wait, base * 12 / 10);
  }
  backoff.reset();
  EXPECT_LE(backoff.next().count(), 120);
}

// ---- Connection against a real server -------------------------------------

std::string server() {
  const char* value = std::getenv("SESSIONSTREAM_TEST_REDIS");
  return value == nullptr ? std::string{} : std::string{value};
}

Endpoint server_endpoint() {
  return parse_url("redis://" + server());
}

std::string unique(std::string_view tag) {
  std::random_device rd;
  return std::string{tag} + "-" + std::to_string(rd()) + std::to_string(rd());
}

int closed_port() {
  // Port 1 (tcpmux) is never served here; connecting to it is refused at once.
  return 1;
}

TEST(RedisConnection, RefusedPortIsUnavailableQuickly) {
  Endpoint endpoint;
  endpoint.host = "127.0.0.1";
  endpoint.port = static_cast<std::uint16_t>(closed_port());
  endpoint.password = "hunter2";
  const auto start = std::chrono::steady_clock::now();
  try {
    Connection connection(endpoint, 2s, 2s);
    FAIL() << "connected to a closed port";
  } catch (const Unavailable& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("127.0.0.1:1"), std::string::npos) << message;
    EXPECT_NE(message.find("refused"), std::string::npos) << message;
    EXPECT_EQ(message.find("hunter2"), std::string::npos) << message;
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
}

class RedisServer : public ::testing::Test {
 protected:
  void SetUp() override {
    if (server().empty()) GTEST_SKIP() << "SESSIONSTREAM_TEST_REDIS is not set";
  }
};

TEST_F(RedisServer, CommandsAreBinarySafe) {
  Connection c(server_endpoint(), 2s, 2s);
  const std::string key = unique("r1:bin");
  const std::string value{"a\0b\r\n\xff", 6};
  const Reply set = c.command({"SET", key, value, "PX", "60000"});
  ASSERT_EQ(set->type, REDIS_REPLY_STATUS);
  const Reply get = c.command({"GET", key});
  ASSERT_EQ(get->type, REDIS_REPLY_STRING);
  EXPECT_EQ(std::string(get->str, get->len), value);
  const Reply error = c.command({"NOSUCHCOMMAND"});
  EXPECT_EQ(error->type, REDIS_REPLY_ERROR);
  EXPECT_FALSE(c.broken());
  EXPECT_TRUE(c.alive());
}

TEST_F(RedisServer, PipelinedRepliesComeInOrder) {
  Connection c(server_endpoint(), 2s, 2s);
  const std::string key = unique("r1:pipe");
  constexpr int kCount = 200;
  for (int i = 0; i < kCount; ++i) c.append({"RPUSH", key, std::to_string(i)});
  c.append({"PEXPIRE", key, "60000"});
  c.append({"LRANGE", key, "0", "-1"});
  for (int i = 0; i < kCount; ++i) {
    const Reply reply = c.read_reply();
    ASSERT_EQ(reply->type, REDIS_REPLY_INTEGER);
    EXPECT_EQ(reply->integer, i + 1);
  }
  EXPECT_EQ(c.read_reply()->integer, 1);
  const Reply list = c.read_reply();
  ASSERT_EQ(list->type, REDIS_REPLY_ARRAY);
  ASSERT_EQ(list->elements, static_cast<std::size_t>(kCount));
  EXPECT_EQ(std::string(list->element[kCount - 1]->str), std::to_string(kCount - 1));
}

TEST_F(RedisServer, AuthFailureSaysSoWithoutThePassword) {
  Endpoint endpoint = server_endpoint();
  endpoint.username = unique("nosuchuser");
  endpoint.password = "hunter2-wrong";
  try {
    Connection c(endpoint, 2s, 2s);
    FAIL() << "AUTH accepted";
  } catch (const Unavailable& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("refused AUTH"), std::string::npos) << message;
    EXPECT_NE(message.find(endpoint.username), std::string::npos) << message;
    EXPECT_EQ(message.find("hunter2"), std::string::npos) << message;
  }
}

TEST_F(RedisServer, SelectsTheDatabase) {
  Endpoint endpoint = server_endpoint();
  endpoint.database = 3;
  Connection c(endpoint, 2s, 2s);
  const std::string key = unique("r1:db");
  c.command({"SET", key, "x", "PX", "60000"});
  Connection other(server_endpoint(), 2s, 2s);
  EXPECT_EQ(other.command({"EXISTS", key})->integer, 0);
  EXPECT_EQ(c.command({"EXISTS", key})->integer, 1);
}

TEST_F(RedisServer, PollReplyWaitsAndStaysUsable) {
  Connection sub(server_endpoint(), 2s, 2s);
  const std::string channel = unique("r1:poll");
  sub.append({"SUBSCRIBE", channel});
  auto confirm = sub.poll_reply(2s);
  ASSERT_TRUE(confirm.has_value());
  ASSERT_EQ((*confirm)->type, REDIS_REPLY_ARRAY);
  // Nothing published: times out, several times over, and stays usable.
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(sub.poll_reply(50ms).has_value());
  EXPECT_FALSE(sub.broken());
  Connection pub(server_endpoint(), 2s, 2s);
  EXPECT_EQ(pub.command({"PUBLISH", channel, "hello"})->integer, 1);
  std::optional<Reply> message;
  for (int i = 0; i < 40 && !message; ++i) message = sub.poll_reply(50ms);
  ASSERT_TRUE(message.has_value());
  ASSERT_EQ((*message)->elements, 3u);
  EXPECT_EQ(std::string((*message)->element[2]->str), "hello");
}

TEST_F(RedisServer, KilledConnectionIsNotAliveAndFails) {
  Connection c(server_endpoint(), 2s, 2s);
  const Reply id = c.command({"CLIENT", "ID"});
  Connection admin(server_endpoint(), 2s, 2s);
  EXPECT_EQ(admin.command({"CLIENT", "KILL", "ID", std::to_string(id->integer)})->integer, 1);
  const bool gone = [&] {
    for (int i = 0; i < 100; ++i) {
      if (!c.alive()) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }();
  EXPECT_TRUE(gone);
  // Writing to the closed socket must fail as Unavailable, not raise SIGPIPE.
  EXPECT_THROW((void)c.command({"PING"}), Unavailable);
  EXPECT_TRUE(c.broken());
  EXPECT_THROW((void)c.command({"PING"}), Unavailable);
}

}  // namespace
}  // namespace sessionstream::redis
