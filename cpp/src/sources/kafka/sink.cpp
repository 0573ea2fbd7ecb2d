#include <mutex>
#include <shared_mutex>
#include <thread>

#include "sessionstream/common/errors.hpp"
#include "sessionstream/sources/kafka/sink.hpp"
#include "sources/kafka/rd.hpp"

namespace sessionstream::kafka {

struct KafkaSink::Impl : public RdKafka::DeliveryReportCb {
  explicit Impl(KafkaSinkConfig cfg) : config(std::move(cfg)) {
    if (!find(config.properties, "bootstrap.servers")) {
      throw InvalidArgument(
          "KafkaSink needs the librdkafka property bootstrap.servers (e.g. 127.0.0.1:9092)");
    }
    // Shared settings (Event Hubs) may carry consumer-only properties.
    properties = merged(producer_defaults(), without_consumer_only(config.properties));
    (void)detail::make_conf(properties);
  }

  // Runs on the poll thread (inside poll/flush), called from librdkafka's C
  // code: nothing may escape it.
  void dr_cb(RdKafka::Message& message) override {
    in_flight.fetch_sub(1, std::memory_order_relaxed);
    if (message.err() == RdKafka::ERR_NO_ERROR) {
      delivered.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    failed.fetch_add(1, std::memory_order_relaxed);
    (void)detail::contain_noted(faults, notes, "kafka sink delivery report callback", [&] {
      broker.set_last_error("delivery failed: " + message.errstr());
      notes.once(
          "warning", "delivery." + detail::error_name(message.err()),
          "kafka sink: delivery to " + message.topic_name() + " failed: " + message.errstr());
    });
  }

  void run(const std::stop_token& stop) {
    auto last_probe = std::chrono::steady_clock::now();
    while (!stop.stop_requested()) {
      if (!detail::contain_noted(faults, notes, "kafka sink poll thread",
                                 [&] { poll_once(last_probe); })) {
        detail::pause_after_fault(stop);
      }
    }
  }

  void poll_once(std::chrono::steady_clock::time_point& last_probe) {
    producer->poll(100);
    if (broker.down() && std::chrono::steady_clock::now() - last_probe > std::chrono::seconds(1)) {
      last_probe = std::chrono::steady_clock::now();
      RdKafka::Metadata* raw = nullptr;
      const auto code = producer->metadata(false, nullptr, &raw, 1000);
      std::unique_ptr<RdKafka::Metadata> metadata{raw};
      if (code == RdKafka::ERR_NO_ERROR) {
        broker.set_up();
        notes.rearm("error.");
      }
    }
  }

  const KafkaSinkConfig config;
  Properties properties;
  detail::NoteLog notes;
  detail::BrokerState broker;
  ThreadFaults faults;  // the poll thread and librdkafka's callbacks
  detail::ClientEvents events{notes, broker, "kafka sink", &faults};

  // start/stop hold it exclusively; produce() shares it, so the producer
  // cannot be destroyed under a produce in progress.
  mutable std::shared_mutex lifecycle_mutex;
  std::unique_ptr<RdKafka::Producer> producer;
  std::jthread thread;
  std::atomic<bool> running{false};

  std::atomic<std::uint64_t> produced{0};
  std::atomic<std::uint64_t> delivered{0};
  std::atomic<std::uint64_t> failed{0};
  std::atomic<std::uint64_t> in_flight{0};
};

KafkaSink::KafkaSink(KafkaSinkConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}

KafkaSink::~KafkaSink() {
  stop();
}

void KafkaSink::start() {
  Impl& s = *impl_;
  std::lock_guard lock(s.lifecycle_mutex);
  if (s.running.load()) return;
  auto conf = detail::make_conf(s.properties);
  detail::set_callback(*conf, "event_cb", &s.events);
  detail::set_callback(*conf, "dr_cb", static_cast<RdKafka::DeliveryReportCb*>(&s));
  std::string errstr;
  s.producer.reset(RdKafka::Producer::create(conf.get(), errstr));
  if (!s.producer) throw KafkaError("cannot create the Kafka producer: " + errstr);
  s.running.store(true);
  s.thread = std::jthread([&s](std::stop_token stop) { s.run(stop); });
}

void KafkaSink::stop(std::chrono::milliseconds flush_timeout) {
  Impl& s = *impl_;
  std::unique_lock lock(s.lifecycle_mutex);
  if (!s.running.load()) return;
  s.running.store(false);
  s.thread.request_stop();
  if (s.thread.joinable()) s.thread.join();
  // flush() serves the remaining delivery reports on this thread.
  s.producer->flush(static_cast<int>(flush_timeout.count()));
  // Purge what could not be delivered; its reports then arrive as failures.
  s.producer->purge(RdKafka::Producer::PURGE_QUEUE | RdKafka::Producer::PURGE_INFLIGHT);
  s.producer->poll(0);
  s.producer.reset();
}

bool KafkaSink::running() const {
  return impl_->running.load();
}

void KafkaSink::produce(const std::string& topic, std::string_view value,
                        std::optional<std::string_view> key,
                        const std::vector<std::pair<std::string, std::string>>& headers,
                        std::int32_t partition) {
  Impl& s = *impl_;
  std::shared_lock lifecycle(s.lifecycle_mutex);
  if (!s.running.load() || !s.producer) throw Closed("the Kafka sink is not running");
  if (topic.empty()) throw InvalidArgument("topic must not be empty");
  const auto deadline = std::chrono::steady_clock::now() + s.config.queue_full_timeout;
  while (true) {
    std::unique_ptr<RdKafka::Headers> record_headers;
    if (!headers.empty()) {
      record_headers.reset(RdKafka::Headers::create());
      for (const auto& [name, text] : headers) record_headers->add(name, text);
    }
    s.in_flight.fetch_add(1, std::memory_order_relaxed);
    const auto code = s.producer->produce(
        topic, partition < 0 ? RdKafka::Topic::PARTITION_UA : partition,
        RdKafka::Producer::RK_MSG_COPY, const_cast<char*>(value.data()), value.size(),
        key ? key->data() : nullptr, key ? key->size() : 0, 0, record_headers.get(), nullptr);
    if (code == RdKafka::ERR_NO_ERROR) {
      // librdkafka owns the headers once produce() succeeded.
      (void)record_headers.release();
      s.produced.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    s.in_flight.fetch_sub(1, std::memory_order_relaxed);
    if (code == RdKafka::ERR__QUEUE_FULL && std::chrono::steady_clock::now() < deadline) {
      // The poll thread drains delivery reports; give it a moment.
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      continue;
    }
    throw KafkaError("cannot produce to '" + topic + "': " + detail::error_text(code),
                     detail::error_name(code));
  }
}

std::uint64_t KafkaSink::flush(std::chrono::milliseconds timeout) {
  Impl& s = *impl_;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // The poll thread serves delivery reports; wait for the in-flight count.
  while (s.in_flight.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return s.in_flight.load();
}

KafkaSinkHealth KafkaSink::health() const {
  const Impl& s = *impl_;
  KafkaSinkHealth h;
  h.running = s.running.load();
  h.produced = s.produced.load();
  h.delivered = s.delivered.load();
  h.failed = s.failed.load();
  h.in_flight = s.in_flight.load();
  h.errors = s.broker.errors();
  h.last_error = s.broker.last_error();
  h.thread_faults = s.faults.report();
  if (!h.running) {
    h.status = "stopped";
    h.reason = "the Kafka sink is not running";
  } else if (s.broker.down() || s.broker.fatal()) {
    h.status = "degraded";
    h.reason = s.broker.reason();
  } else {
    h.status = "healthy";
  }
  detail::degrade_on_fault(h.thread_faults, h.status, h.reason);
  return h;
}

std::vector<LogNote> KafkaSink::take_log_notes() {
  return impl_->notes.take();
}

}  // namespace sessionstream::kafka
