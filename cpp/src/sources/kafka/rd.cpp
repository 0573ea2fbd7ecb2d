#include "sources/kafka/rd.hpp"

#include <openssl/sha.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <thread>

#include "common/random.hpp"
#include "sessionstream/common/errors.hpp"
#include "sessionstream/common/utf8.hpp"

namespace sessionstream::kafka::detail {

std::unique_ptr<RdKafka::Conf> make_conf(const Properties& properties) {
  std::unique_ptr<RdKafka::Conf> conf{RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL)};
  if (!conf) throw KafkaError("librdkafka could not create a configuration object");
  for (const auto& [name, value] : properties) {
    std::string errstr;
    if (conf->set(name, value, errstr) != RdKafka::Conf::CONF_OK) {
      const bool secret = redacted({{name, value}}).front().second != value;
      throw InvalidArgument("librdkafka property '" + name + "'='" +
                            (secret ? std::string{"***"} : utf8_excerpt(value, 120)) +
                            "' rejected: " + errstr);
    }
  }
  return conf;
}

namespace {
template <typename Callback>
void set_callback_impl(RdKafka::Conf& conf, const char* name, Callback* cb) {
  std::string errstr;
  if (conf.set(name, cb, errstr) != RdKafka::Conf::CONF_OK) {
    throw KafkaError(std::string{"librdkafka refused "} + name + ": " + errstr);
  }
}
}  // namespace

void set_callback(RdKafka::Conf& conf, const char* name, RdKafka::EventCb* cb) {
  set_callback_impl(conf, name, cb);
}
void set_callback(RdKafka::Conf& conf, const char* name, RdKafka::RebalanceCb* cb) {
  set_callback_impl(conf, name, cb);
}
void set_callback(RdKafka::Conf& conf, const char* name, RdKafka::DeliveryReportCb* cb) {
  set_callback_impl(conf, name, cb);
}

std::string error_name(RdKafka::ErrorCode code) {
  return rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(code));
}

std::string error_text(RdKafka::ErrorCode code) {
  return RdKafka::err2str(code);
}

void BrokerState::set_down(std::string reason) {
  std::lock_guard lock(mutex_);
  reason_ = std::move(reason);
  down_.store(true, std::memory_order_release);
}

void BrokerState::set_up() {
  std::lock_guard lock(mutex_);
  if (!fatal_.load()) reason_.clear();
  down_.store(false, std::memory_order_release);
}

void BrokerState::set_fatal(std::string reason) {
  std::lock_guard lock(mutex_);
  reason_ = std::move(reason);
  fatal_.store(true, std::memory_order_release);
}

std::string BrokerState::reason() const {
  std::lock_guard lock(mutex_);
  return reason_;
}

void BrokerState::set_last_error(std::string text) {
  std::lock_guard lock(mutex_);
  last_error_ = std::move(text);
}

std::string BrokerState::last_error() const {
  std::lock_guard lock(mutex_);
  return last_error_;
}

void ClientEvents::event_cb(RdKafka::Event& event) {
  (void)contain_noted(faults_, notes_, where_, [&] { handle(event); });
}

void ClientEvents::handle(RdKafka::Event& event) {
  switch (event.type()) {
    case RdKafka::Event::EVENT_ERROR: {
      const auto code = event.err();
      const std::string name = error_name(code);
      const std::string text = who_ + ": " + error_text(code) + ": " + event.str();
      state_.count_error();
      state_.set_last_error(text);
      if (event.fatal()) {
        state_.set_fatal("fatal client error: " + text);
        notes_.always("error", "error.fatal", text);
        break;
      }
      if (code == RdKafka::ERR__ALL_BROKERS_DOWN) {
        state_.set_down("broker unreachable: " + event.str());
      }
      // Connection errors repeat on every reconnect attempt: log each kind once
      // until the broker is reachable again.
      notes_.once("warning", "error." + name, text);
      break;
    }
    case RdKafka::Event::EVENT_LOG: {
      const int severity = event.severity();
      const char* level = severity <= RdKafka::Event::EVENT_SEVERITY_ERROR     ? "error"
                          : severity <= RdKafka::Event::EVENT_SEVERITY_WARNING ? "warning"
                          : severity <= RdKafka::Event::EVENT_SEVERITY_INFO    ? "info"
                                                                               : "debug";
      notes_.once(level, "log." + event.fac() + "." + utf8_excerpt(event.str(), 40),
                  who_ + ": " + event.fac() + ": " + event.str());
      break;
    }
    case RdKafka::Event::EVENT_STATS:
    case RdKafka::Event::EVENT_THROTTLE:
    default:
      break;
  }
}

std::optional<std::int64_t> end_offset(RdKafka::KafkaConsumer& consumer, const std::string& topic,
                                       std::int32_t partition, NoteLog& notes,
                                       std::chrono::milliseconds budget) {
  const auto deadline = std::chrono::steady_clock::now() + budget;
  RdKafka::ErrorCode code = RdKafka::ERR_NO_ERROR;
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    std::int64_t low = -1;
    std::int64_t high = -1;
    code = consumer.query_watermark_offsets(
        topic, partition, &low, &high, static_cast<int>(std::clamp<long long>(left, 100, 1000)));
    if (code == RdKafka::ERR_NO_ERROR && high >= 0) return high;
    if (left <= 100) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  notes.once("warning", "watermark." + error_name(code),
             "cannot resolve the end of " + topic + "/" + std::to_string(partition) + ": " +
                 error_text(code) + "; consuming from librdkafka's end position instead");
  return std::nullopt;
}

std::optional<std::int64_t> latest_start(RdKafka::KafkaConsumer& consumer, const std::string& topic,
                                         std::int32_t partition,
                                         std::chrono::system_clock::time_point since,
                                         NoteLog& notes, std::chrono::milliseconds budget) {
  const auto since_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(since.time_since_epoch()).count();
  const std::unique_ptr<RdKafka::TopicPartition> query{
      RdKafka::TopicPartition::create(topic, partition, since_ms)};
  std::vector<RdKafka::TopicPartition*> queries{query.get()};
  const auto code = consumer.offsetsForTimes(
      queries, static_cast<int>(std::clamp<long long>(budget.count(), 100, 5000)));
  // offset -1: nothing stamped since then, so the end is the start.
  if (code == RdKafka::ERR_NO_ERROR && query->err() == RdKafka::ERR_NO_ERROR &&
      query->offset() >= 0) {
    return query->offset();
  }
  return end_offset(consumer, topic, partition, notes, budget);
}

void note_skip(NoteLog& notes, SkipKind kind, std::uint64_t count, const RecordView& record,
               const std::string& detail) {
  std::string message = std::string{"skipped record "} + std::string{record.topic} + "/" +
                        std::to_string(record.partition) + "@" + std::to_string(record.offset) +
                        " (" + to_string(kind) + "): " + detail;
  const std::string key = std::string{"skip."} + to_string(kind);
  if (kind == SkipKind::invalid_utf8) {
    if (count % kInvalidUtf8NoteEvery != 1 && kInvalidUtf8NoteEvery != 1) return;
    notes.always("warning", key,
                 message + "; " + std::to_string(count) +
                     " such record(s) so far, counted in health and noted once per " +
                     std::to_string(kInvalidUtf8NoteEvery));
    return;
  }
  notes.once("warning", key,
             message + "; further records of this kind are counted in health, not logged");
}

RecordView record_view(RdKafka::Message& message) {
  // The C view points into the message's own memory; the C++ accessors return copies.
  rd_kafka_message_t* raw = message.c_ptr();
  RecordView view;
  if (raw->rkt != nullptr) view.topic = rd_kafka_topic_name(raw->rkt);
  view.partition = raw->partition;
  view.offset = raw->offset;
  if (raw->key != nullptr) {
    view.key = std::string_view{static_cast<const char*>(raw->key), raw->key_len};
  }
  if (raw->payload != nullptr) {
    view.value = std::string_view{static_cast<const char*>(raw->payload), raw->len};
  }
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(raw, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR && headers != nullptr) {
    const char* name = nullptr;
    const void* value = nullptr;
    std::size_t size = 0;
    for (std::size_t i = 0;
         rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
         ++i) {
      view.headers.push_back({name, value == nullptr
                                        ? std::nullopt
                                        : std::optional<std::string_view>{std::string_view{
                                              static_cast<const char*>(value), size}}});
    }
  }
  return view;
}

std::string group_safe(std::string_view text) {
  std::string out{text};
  for (char& c : out) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) c = '_';
  }
  return out;
}

std::string session_digest(std::string_view session_id) {
  std::array<unsigned char, SHA256_DIGEST_LENGTH> digest{};
  SHA256(reinterpret_cast<const unsigned char*>(session_id.data()), session_id.size(),
         digest.data());
  std::string out = "h";
  char byte[3];
  for (std::size_t i = 0; i < 8; ++i) {
    std::snprintf(byte, sizeof byte, "%02x", digest[i]);
    out += byte;
  }
  return out;
}

std::string random_hex8() {
  std::uint32_t value = 0;
  sessionstream::detail::secure_random(&value, sizeof value);
  char buffer[9];
  std::snprintf(buffer, sizeof buffer, "%08x", value);
  return buffer;
}

std::string default_node_id() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') {
    std::snprintf(host, sizeof host, "node");
  }
  return group_safe(host) + "-" + std::to_string(::getpid());
}

double unix_seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

}  // namespace sessionstream::kafka::detail
