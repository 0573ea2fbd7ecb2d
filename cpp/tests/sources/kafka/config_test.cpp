#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include <algorithm>

#include "sessionstream/common/errors.hpp"
#include "sessionstream/sources/kafka/config.hpp"
#include "sessionstream/sources/kafka/source.hpp"
#include "sources/kafka/rd.hpp"

namespace sessionstream::kafka {
namespace {

std::string value_of(const Properties& p, std::string_view key) {
  const auto v = find(p, key);
  return v ? *v : "<absent>";
}

TEST(KafkaConfig, StartPositionIsLatestOrEarliest) {
  EXPECT_EQ(parse_start_position("latest"), StartPosition::latest);
  EXPECT_EQ(parse_start_position("earliest"), StartPosition::earliest);
  EXPECT_THROW((void)parse_start_position("beginning"), InvalidArgument);
}

TEST(KafkaConfig, ConsumerDefaultsCarrySeed000Settings) {
  const Properties d = consumer_defaults();
  EXPECT_EQ(value_of(d, "max.poll.interval.ms"), "300000");
  EXPECT_EQ(value_of(d, "connections.max.idle.ms"), "540000");
  // librdkafka's consumer request timeout is socket.timeout.ms.
  EXPECT_EQ(value_of(d, "socket.timeout.ms"), "30000");
  if (rd_kafka_version() >= kRetryBackoffForConsumers) {
    EXPECT_EQ(value_of(d, "retry.backoff.ms"), "100");
  } else {
    // Producer-only before librdkafka 2.5: setting it would only draw a warning.
    EXPECT_EQ(value_of(d, "retry.backoff.ms"), "<absent>");
  }
  EXPECT_EQ(value_of(d, "fetch.wait.max.ms"), "10");
  EXPECT_EQ(value_of(d, "enable.auto.commit"), "false");
  EXPECT_EQ(value_of(d, "auto.offset.reset"), "latest");
}

TEST(KafkaConfig, ProducerDefaultsUseTheSeedRequestTimeout) {
  EXPECT_EQ(value_of(producer_defaults(), "request.timeout.ms"), "30000");
}

TEST(KafkaConfig, OverridesWinAndKeepOneEntryPerKey) {
  const Properties out = merged(
      consumer_defaults(),
      {{"fetch.wait.max.ms", "100"}, {"bootstrap.servers", "h:1"}, {"fetch.wait.max.ms", "250"}});
  EXPECT_EQ(value_of(out, "fetch.wait.max.ms"), "250");
  EXPECT_EQ(value_of(out, "bootstrap.servers"), "h:1");
  EXPECT_EQ(std::count_if(out.begin(), out.end(),
                          [](const auto& kv) { return kv.first == "fetch.wait.max.ms"; }),
            1);
}

TEST(KafkaConfig, RedactedMasksCredentials) {
  const Properties out = redacted({{"sasl.password", "s3cret"},
                                   {"sasl.username", "$ConnectionString"},
                                   {"ssl.key.password", "x"},
                                   {"bootstrap.servers", "h:9093"}});
  EXPECT_EQ(value_of(out, "sasl.password"), "***");
  EXPECT_EQ(value_of(out, "ssl.key.password"), "***");
  EXPECT_EQ(value_of(out, "sasl.username"), "$ConnectionString");
  EXPECT_EQ(value_of(out, "bootstrap.servers"), "h:9093");
}

constexpr const char* kConnection =
    "Endpoint=sb://my-ns.servicebus.windows.net/;SharedAccessKeyName=listen;"
    "SharedAccessKey=abc+def/ghi=;EntityPath=party";

TEST(EventHubs, ParsesTheConnectionString) {
  const auto parsed = parse_event_hubs_connection_string(kConnection);
  EXPECT_EQ(parsed.host, "my-ns.servicebus.windows.net");
  EXPECT_EQ(parsed.bootstrap, "my-ns.servicebus.windows.net:9093");
  EXPECT_EQ(parsed.key_name, "listen");
  EXPECT_EQ(parsed.entity_path, "party");
}

TEST(EventHubs, PropertiesUseSaslSslPlainWithTheConnectionStringAsPassword) {
  const Properties p = event_hubs_properties(std::string{"  "} + kConnection + "\n");
  EXPECT_EQ(value_of(p, "bootstrap.servers"), "my-ns.servicebus.windows.net:9093");
  EXPECT_EQ(value_of(p, "security.protocol"), "SASL_SSL");
  EXPECT_EQ(value_of(p, "sasl.mechanisms"), "PLAIN");
  EXPECT_EQ(value_of(p, "sasl.username"), "$ConnectionString");
  EXPECT_EQ(value_of(p, "sasl.password"), kConnection);
  EXPECT_EQ(value_of(p, "socket.keepalive.enable"), "true");
  // Below the service's 240 s idle cut-off, unlike seed 000's 540 s.
  EXPECT_EQ(value_of(p, "connections.max.idle.ms"), "180000");
  EXPECT_EQ(value_of(p, "metadata.max.age.ms"), "180000");
}

TEST(EventHubs, AcceptsKeysInAnyCaseAndWithoutEntityPath) {
  const auto parsed = parse_event_hubs_connection_string(
      "endpoint=sb://ns1.servicebus.windows.net;sharedaccesskeyname=n;sharedaccesskey=k");
  EXPECT_EQ(parsed.host, "ns1.servicebus.windows.net");
  EXPECT_TRUE(parsed.entity_path.empty());
}

TEST(EventHubs, RejectsIncompleteStringsWithAClearMessage) {
  for (const char* bad : {"", "garbage", "Endpoint=sb://ns.servicebus.windows.net/",
                          "SharedAccessKeyName=a;SharedAccessKey=b",
                          "Endpoint=sb://bad host/;SharedAccessKeyName=a;SharedAccessKey=b"}) {
    try {
      (void)parse_event_hubs_connection_string(bad);
      ADD_FAILURE() << "accepted: " << bad;
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string{e.what()}.find("Endpoint=sb://"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace sessionstream::kafka

namespace sessionstream::kafka {
namespace {

TEST(KafkaConfig, ProducerHandlesDropConsumerOnlyProperties) {
  const Properties out = without_consumer_only({{"bootstrap.servers", "h:1"},
                                                {"group.id", "g"},
                                                {"session.timeout.ms", "30000"},
                                                {"socket.keepalive.enable", "true"},
                                                {"fetch.wait.max.ms", "10"}});
  EXPECT_EQ(out, (Properties{{"bootstrap.servers", "h:1"}, {"socket.keepalive.enable", "true"}}));
}

}  // namespace
}  // namespace sessionstream::kafka

TEST(KafkaGroupIds, NameASessionByItsDigestNeverByItsId) {
  // SHA-256("abc") starts ba7816bf8f01cfea: the digest /health shows as "h:ba78...".
  EXPECT_EQ(sessionstream::kafka::detail::session_digest("abc"), "hba7816bf8f01cfea");
  const std::string id = "0123456789abcdef0123456789abcdef";
  const std::string digest = sessionstream::kafka::detail::session_digest(id);
  EXPECT_EQ(digest.size(), 17u);
  EXPECT_EQ(digest.find("0123456789abcdef"), std::string::npos);
}
