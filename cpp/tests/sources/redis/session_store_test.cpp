// RedisSessionStore against a real server. Skipped unless
// SESSIONSTREAM_TEST_REDIS names one (host:port). Every test uses a key
// prefix of its own and deletes its keys afterwards.

#include <gtest/gtest.h>
#include <hiredis.h>

#include <cstdlib>
#include <random>
#include <sstream>
#include <thread>

#include "sessionstream/common/errors.hpp"
#include "sessionstream/sources/redis/session_store.hpp"
#include "sources/redis/connection.hpp"
#include "test_support.hpp"

namespace sessionstream::redis {
namespace {

using namespace std::chrono_literals;

std::string server() {
  const char* value = std::getenv("SESSIONSTREAM_TEST_REDIS");
  return value == nullptr ? std::string{} : std::string{value};
}

std::string random_digits() {
  std::random_device rd;
  return std::to_string(rd()) + std::to_string(rd());
}

TEST(RedisSessionStoreConfigTest, RefusesBadSettingsWithoutConnecting) {
  RedisSessionStoreConfig config;
  config.endpoint.port = 1;  // nothing there: construction must not care
  EXPECT_NO_THROW(RedisSessionStore{config});
  config.key_prefix = "";
  EXPECT_THROW(RedisSessionStore{config}, InvalidArgument);
  config.key_prefix = "a b";
  EXPECT_THROW(RedisSessionStore{config}, InvalidArgument);
  config.key_prefix = "ok";
  config.store.max_history_entries = 0;
  EXPECT_THROW(RedisSessionStore{config}, InvalidArgument);
  config.store.max_history_entries = 10;
  config.store.idle_timeout = 0ms;
  EXPECT_THROW(RedisSessionStore{config}, InvalidArgument);
}

TEST(RedisSessionStoreUnreachable, OperationsAreUnavailable) {
  RedisSessionStoreConfig config;
  config.endpoint = parse_url("redis://:hunter2@127.0.0.1:1/0");
  RedisSessionStore store(config);
  const std::string sid = "sess-" + random_digits();
  try {
    store.set(sid, "k", "v");
    FAIL() << "set succeeded without Redis";
  } catch (const Unavailable& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("127.0.0.1:1"), std::string::npos) << message;
    EXPECT_EQ(message.find("hunter2"), std::string::npos) << message;
  }
  EXPECT_THROW((void)store.get(sid, "k"), Unavailable);
  EXPECT_THROW((void)store.append_history(sid, "x"), Unavailable);
  EXPECT_THROW((void)store.size(), Unavailable);
  EXPECT_THROW((void)store.sweep(), Unavailable);
  const auto h = store.health();
  EXPECT_FALSE(h.connected);
  EXPECT_GE(h.errors, 5u);
  EXPECT_NE(h.last_error.find("refused"), std::string::npos) << h.last_error;
  EXPECT_EQ(h.endpoint, "redis://:***@127.0.0.1:1/0");
  // Bad input is refused before any connection is tried.
  EXPECT_THROW(store.set("bad id!", "k", "v"), InvalidArgument);
}

class RedisSessionStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (server().empty()) GTEST_SKIP() << "SESSIONSTREAM_TEST_REDIS is not set";
    prefix_ = "r1test" + random_digits();
    admin_ = std::make_unique<Connection>(parse_url("redis://" + server()), 2s, 2s);
  }

  void TearDown() override {
    if (!admin_) return;
    const Reply keys = admin_->command({"KEYS", prefix_ + ":*"});
    for (std::size_t i = 0; i < keys->elements; ++i) {
      admin_->command({"DEL", std::string(keys->element[i]->str, keys->element[i]->len)});
    }
  }

  RedisSessionStoreConfig config(std::chrono::milliseconds idle = 60s) const {
    RedisSessionStoreConfig c;
    c.endpoint = parse_url("redis://" + server());
    c.key_prefix = prefix_;
    c.store.idle_timeout = idle;
    c.store.max_history_entries = 5;
    c.store.max_value_bytes = 1024;
    c.client_name = prefix_;
    return c;
  }

  // Kills this test's store connections, found by their name.
  int kill_store_connections() {
    const Reply list = admin_->command({"CLIENT", "LIST", "TYPE", "normal"});
    std::istringstream lines(std::string(list->str, list->len));
    int killed = 0;
    for (std::string line; std::getline(lines, line);) {
      if (line.find(" name=" + prefix_ + " ") == std::string::npos) continue;
      const auto start = line.find("id=") + 3;
      const std::string id = line.substr(start, line.find(' ', start) - start);
      killed += static_cast<int>(admin_->command({"CLIENT", "KILL", "ID", id})->integer);
    }
    return killed;
  }

  long long pttl(const std::string& key) { return admin_->command({"PTTL", key})->integer; }

  std::string prefix_;
  std::unique_ptr<Connection> admin_;
};

TEST_F(RedisSessionStoreTest, SetGetEraseKeys) {
  RedisSessionStore store(config());
  const std::string sid = "session-aaaa1111";
  EXPECT_FALSE(store.contains(sid));
  EXPECT_FALSE(store.get(sid, "k").has_value());
  store.set(sid, "b", "2");
  store.set(sid, "a", std::string{"bin\0ary", 7});
  store.set(sid, "b", "3");
  EXPECT_EQ(store.get(sid, "b"), "3");
  EXPECT_EQ(store.get(sid, "a"), (std::string{"bin\0ary", 7}));
  EXPECT_EQ(store.keys(sid), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(store.contains(sid));
  EXPECT_TRUE(store.erase(sid, "a"));
  EXPECT_FALSE(store.erase(sid, "a"));
  EXPECT_EQ(store.keys(sid), (std::vector<std::string>{"b"}));
  EXPECT_EQ(store.size(), 1u);
  EXPECT_TRUE(store.erase_session(sid));
  EXPECT_FALSE(store.erase_session(sid));
  EXPECT_FALSE(store.contains(sid));
  EXPECT_EQ(store.size(), 0u);
  EXPECT_TRUE(store.keys(sid).empty());
  // Ids the memory store would refuse are refused, or simply not found.
  EXPECT_THROW(store.set("short", "k", "v"), InvalidArgument);
  EXPECT_THROW(store.set("has:colon-1234", "k", "v"), InvalidArgument);
  EXPECT_FALSE(store.get("has:colon-1234", "k").has_value());
  EXPECT_TRUE(store.health().connected);
}

TEST_F(RedisSessionStoreTest, HistoryIsTrimmedAndIndexed) {
  RedisSessionStore store(config());
  const std::string sid = "session-hist0001";
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(store.append_history(sid, "e" + std::to_string(i)), static_cast<std::uint64_t>(i));
  }
  // max_history_entries = 5: the oldest three are gone, oldest first.
  EXPECT_EQ(store.history(sid, 100), (std::vector<std::string>{"e3", "e4", "e5", "e6", "e7"}));
  EXPECT_EQ(store.history(sid, 2), (std::vector<std::string>{"e6", "e7"}));
  EXPECT_TRUE(store.history(sid, 0).empty());
  EXPECT_TRUE(store.history("session-none0000", 10).empty());
  EXPECT_EQ(admin_->command({"LLEN", prefix_ + ":s:" + sid + ":h"})->integer, 5);
}

TEST_F(RedisSessionStoreTest, OversizedValuesAreRefused) {
  RedisSessionStore store(config());
  const std::string sid = "session-big00001";
  EXPECT_THROW(store.set(sid, "k", std::string(1025, 'x')), PayloadTooLarge);
  EXPECT_THROW((void)store.append_history(sid, std::string(1025, 'x')), PayloadTooLarge);
  EXPECT_NO_THROW(store.set(sid, "k", std::string(1024, 'x')));
  EXPECT_FALSE(store.history(sid, 10).size());
}

TEST_F(RedisSessionStoreTest, TwoNodesShareSessions) {
  RedisSessionStore node_a(config());
  RedisSessionStore node_b(config());
  const std::string sid = "session-shared01";
  node_a.set(sid, "user", "ada");
  EXPECT_EQ(node_b.get(sid, "user"), "ada");
  EXPECT_EQ(node_b.append_history(sid, "hello"), 0u);
  EXPECT_EQ(node_a.append_history(sid, "hi"), 1u);
  EXPECT_EQ(node_a.history(sid, 10), (std::vector<std::string>{"hello", "hi"}));
  EXPECT_TRUE(node_b.erase_session(sid));
  EXPECT_FALSE(node_a.contains(sid));
}

TEST_F(RedisSessionStoreTest, WritesSetTheIdleTimeoutAndRedisExpiresIdleSessions) {
  RedisSessionStore store(config(400ms));
  const std::string sid = "session-ttl00001";
  store.set(sid, "k", "v");
  store.append_history(sid, "e");
  const std::string base = prefix_ + ":s:" + sid;
  for (const auto* suffix : {":kv", ":h", ":n"}) {
    const auto ttl = pttl(base + suffix);
    EXPECT_GT(ttl, 0) << suffix;
    EXPECT_LE(ttl, 400) << suffix;
  }
  // Use keeps it alive past one idle timeout...
  for (int i = 0; i < 4; ++i) {
    std::this_thread::sleep_for(150ms);
    store.touch(sid);
  }
  EXPECT_EQ(store.get(sid, "k"), "v");
  // ...idleness ends it, with no sweep by any node.
  std::this_thread::sleep_for(600ms);
  EXPECT_FALSE(store.get(sid, "k").has_value());
  EXPECT_FALSE(store.contains(sid));
  EXPECT_EQ(admin_->command({"EXISTS", base + ":kv", base + ":h", base + ":n"})->integer, 0);
  EXPECT_EQ(store.size(), 0u);
}

TEST_F(RedisSessionStoreTest, GetRefreshesOnlyExistingSessions) {
  RedisSessionStore store(config(60s));
  const std::string sid = "session-get00001";
  EXPECT_FALSE(store.get(sid, "k").has_value());
  EXPECT_FALSE(store.contains(sid));  // a read never creates a session
  EXPECT_EQ(store.size(), 0u);
  store.touch(sid);
  EXPECT_TRUE(store.contains(sid));  // touch does, as in the memory store
  EXPECT_EQ(store.size(), 1u);
}

TEST_F(RedisSessionStoreTest, SweepAndSize) {
  RedisSessionStore store(config(300ms));
  store.set("session-old00001", "k", "v");
  store.touch("session-old00002");
  std::this_thread::sleep_for(450ms);
  store.set("session-new00001", "k", "v");
  // Index entries of idle sessions remain until sweep or size removes them.
  EXPECT_EQ(admin_->command({"ZCARD", prefix_ + ":sessions"})->integer, 3);
  EXPECT_EQ(store.sweep(), 2u);
  EXPECT_EQ(store.sweep(), 0u);
  EXPECT_EQ(store.size(), 1u);
  EXPECT_TRUE(store.contains("session-new00001"));
  EXPECT_FALSE(store.contains("session-old00001"));
  std::this_thread::sleep_for(450ms);
  EXPECT_EQ(store.size(), 0u);
  EXPECT_EQ(admin_->command({"ZCARD", prefix_ + ":sessions"})->integer, 0);
}

TEST_F(RedisSessionStoreTest, ReconnectsOnceAfterTheConnectionIsKilled) {
  RedisSessionStore store(config());
  const std::string sid = "session-recon001";
  store.set(sid, "k", "v");
  ASSERT_EQ(kill_store_connections(), 1);
  EXPECT_EQ(store.get(sid, "k"), "v");
  ASSERT_EQ(kill_store_connections(), 1);
  // A killed connection is noticed before the append is sent, so even the
  // append (never retried once sent) goes through.
  EXPECT_EQ(store.append_history(sid, "after"), 0u);
  EXPECT_TRUE(store.health().connected);
}

}  // namespace
}  // namespace sessionstream::redis
