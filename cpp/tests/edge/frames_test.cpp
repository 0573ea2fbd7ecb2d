#include "edge/frames.hpp"

#include <gtest/gtest.h>

#include <string>

#include "edge/token_bucket.hpp"
#include "test_support.hpp"

namespace sessionstream::edge {
namespace {

using namespace std::chrono_literals;

TEST(EdgeFrames, ChunkHeaderIsLowercaseHex) {
  frames::ChunkHeader header;
  header.set(0);
  EXPECT_EQ(header.view(), "0\r\n");
  header.set(255);
  EXPECT_EQ(header.view(), "ff\r\n");
  header.set(262144);
  EXPECT_EQ(header.view(), "40000\r\n");
  header.set(~std::size_t{0});
  EXPECT_EQ(header.view(), "ffffffffffffffff\r\n");
}

TEST(EdgeFrames, HeartbeatChunkIsOneValidChunk) {
  EXPECT_EQ(frames::kChunkedHeartbeat, "8\r\n" + std::string{frames::kHeartbeat} + "\r\n");
}

TEST(EdgeFrames, SseCloseFrameMatchesThePythonOne) {
  EXPECT_EQ(frames::sse_close("shutdown", 5000),
            "retry: 5000\nevent: close\ndata: {\"reason\":\"shutdown\"}\n\n");
  // A replaced stream's close frame sets the marker id, so the EventSource's
  // own reconnect is recognised and answered 204.
  EXPECT_EQ(frames::sse_close("replaced", std::nullopt),
            "id: replaced\nevent: close\ndata: {\"reason\":\"replaced\"}\n\n");
  EXPECT_EQ(frames::sse_close("slow_consumer", std::nullopt),
            "event: close\ndata: {\"reason\":\"slow_consumer\"}\n\n");
  EXPECT_EQ(frames::sse_close("a\"b", std::nullopt),
            "event: close\ndata: {\"reason\":\"a\\\"b\"}\n\n");
}

TEST(EdgeFrames, CloseCodesPerReason) {
  EXPECT_EQ(frames::close_code("shutdown"), 1001);
  EXPECT_EQ(frames::close_code("replaced"), 4000);
  EXPECT_EQ(frames::close_code("slow_consumer"), 4001);
  EXPECT_EQ(frames::close_code("session_cleanup"), 4002);
  EXPECT_EQ(frames::close_code("client_gone"), 4003);
  EXPECT_EQ(frames::close_code("invalid_utf8"), 1007);
  EXPECT_EQ(frames::close_code("anything else"), 1000);
}

TEST(EdgeFrames, CloseTextIsCutOnACharacterBoundary) {
  EXPECT_EQ(frames::close_text("short"), "short");
  const std::string exact(123, 'x');
  EXPECT_EQ(frames::close_text(exact), exact);
  // 122 ASCII bytes and a 2-byte character straddling the limit.
  const std::string straddle = std::string(122, 'x') + "\xC3\xA9" + "tail";
  EXPECT_EQ(frames::close_text(straddle), std::string(122, 'x'));
  std::string euros;
  for (int i = 0; i < 60; ++i) euros += "\xE2\x82\xAC";  // 180 bytes
  const auto cut = frames::close_text(euros);
  EXPECT_EQ(cut.size(), 123u);  // 41 whole characters
}

TEST(EdgeFrames, NumbersFormattedLikePython) {
  EXPECT_EQ(frames::format_g(20.0), "20");
  EXPECT_EQ(frames::format_g(0.5), "0.5");
  EXPECT_EQ(frames::format_g(2.5e-5), "2.5e-05");
  EXPECT_EQ(frames::format_g(1234567.0), "1.23457e+06");
  EXPECT_EQ(frames::round3(0.05), "0.05");
  EXPECT_EQ(frames::round3(0.0), "0.0");
  EXPECT_EQ(frames::round3(1.0), "1.0");
  EXPECT_EQ(frames::round3(0.04999999), "0.05");
  EXPECT_EQ(frames::round3(0.0004), "0.0");
  EXPECT_EQ(frames::round3(0.0006), "0.001");
  EXPECT_EQ(frames::round3(2.5), "2.5");
}

TEST(EdgeFrames, ErrorFramesAreTheProtocolOnes) {
  EXPECT_EQ(
      frames::rate_limited(20.0, 40, 0.05),
      "[{\"type\":\"error\",\"error\":\"rate_limited\",\"detail\":\"more than 20 messages per "
      "second (burst 40); message dropped\",\"retry_after\":0.05}]");
  EXPECT_EQ(frames::too_large(70000, 65536),
            "[{\"type\":\"error\",\"error\":\"message_too_large\",\"detail\":\"message of 70000 "
            "bytes exceeds the limit of 65536 bytes\",\"limit\":65536}]");
  EXPECT_EQ(frames::binary_not_supported(),
            "[{\"type\":\"error\",\"error\":\"binary_not_supported\",\"detail\":\"send JSON "
            "objects as text frames\"}]");
  EXPECT_EQ(frames::busy(),
            "[{\"type\":\"error\",\"error\":\"busy\",\"detail\":\"the server is overloaded; "
            "message dropped\"}]");
  for (const auto& frame : {frames::rate_limited(2.5, 3, 0.123456), frames::busy()}) {
    EXPECT_TRUE(test::is_valid_json(frame)) << frame;
  }
}

TEST(EdgeTokenBucket, BurstThenRate) {
  const auto t0 = TokenBucket::Clock::now();
  TokenBucket bucket{10.0, 3.0, t0};
  EXPECT_TRUE(bucket.take(t0));
  EXPECT_TRUE(bucket.take(t0));
  EXPECT_TRUE(bucket.take(t0));
  EXPECT_FALSE(bucket.take(t0));
  EXPECT_NEAR(bucket.retry_after(), 0.1, 1e-9);
  EXPECT_FALSE(bucket.take(t0 + 50ms));
  EXPECT_NEAR(bucket.retry_after(), 0.05, 1e-9);
  EXPECT_TRUE(bucket.take(t0 + 100ms));
  // Never more than the burst saved up.
  EXPECT_TRUE(bucket.take(t0 + 100s));
  EXPECT_TRUE(bucket.take(t0 + 100s));
  EXPECT_TRUE(bucket.take(t0 + 100s));
  EXPECT_FALSE(bucket.take(t0 + 100s));
}

}  // namespace
}  // namespace sessionstream::edge
