#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <thread>

#include "sessionstream/common/errors.hpp"
#include "sessionstream/common/utf8.hpp"
#include "sessionstream/sessions/session_id.hpp"
#include "sessionstream/sources/kafka/admin.hpp"
#include "sessionstream/sources/kafka/session_pool.hpp"
#include "sources/kafka/rd.hpp"

namespace sessionstream::kafka {

namespace {

using SystemClock = std::chrono::system_clock;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             SystemClock::now().time_since_epoch())
      .count();
}

struct QueueDeleter {
  void operator()(rd_kafka_queue_t* q) const noexcept { rd_kafka_queue_destroy(q); }
};

bool valid_domain(std::string_view domain) {
  return !domain.empty() && domain.size() <= 100 &&
         std::all_of(domain.begin(), domain.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
         });
}

// One consumer of one (session, domain), in a group of its own.
struct Entry : public RdKafka::RebalanceCb {
  std::string session;
  std::string domain;
  std::string group_id;
  std::string topic;
  std::string channel;
  TemplateVars vars;
  StartPosition start = StartPosition::latest;
  SystemClock::time_point created;
  std::atomic<std::int64_t> last_active_ms{0};

  detail::NoteLog* notes = nullptr;
  ThreadFaults* faults = nullptr;
  std::unique_ptr<detail::ClientEvents> events;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer;
  std::unique_ptr<rd_kafka_queue_t, QueueDeleter> queue;

  // Held by the poll thread while it consumes and by the closer while it
  // closes: the two never use the consumer at once.
  std::mutex use;
  std::atomic<bool> closing{false};
  std::atomic<bool> assigned{false};
  std::atomic<std::uint64_t> received{0};
  std::atomic<std::uint64_t> published{0};
  std::map<std::int32_t, std::int64_t> next_offsets;  // poll thread only
  std::function<void()> on_assigned;

  void rebalance_cb(RdKafka::KafkaConsumer* rk, RdKafka::ErrorCode err,
                    std::vector<RdKafka::TopicPartition*>& partitions) override {
    // Called from librdkafka's C code (inside consume() or close()): nothing may escape.
    if (detail::contain_noted(*faults, *notes, "kafka session consumer rebalance callback",
                              [&] { rebalance(rk, err, partitions); })) {
      return;
    }
    // Half done: give these partitions up rather than leave some assigned
    // without a position; they come back at the next rebalance.
    try {
      if (rk->rebalance_protocol() == "COOPERATIVE") {
        std::unique_ptr<RdKafka::Error> error{rk->incremental_unassign(partitions)};
      } else {
        rk->unassign();
      }
    } catch (...) {
      // Out of memory: the fault is counted and health says degraded.
    }
    assigned.store(false);
  }

  void rebalance(RdKafka::KafkaConsumer* rk, RdKafka::ErrorCode err,
                 std::vector<RdKafka::TopicPartition*>& partitions) {
    const bool cooperative = rk->rebalance_protocol() == "COOPERATIVE";
    if (err == RdKafka::ERR__ASSIGN_PARTITIONS) {
      for (RdKafka::TopicPartition* tp : partitions) {
        const auto known = next_offsets.find(tp->partition());
        if (known != next_offsets.end()) {
          tp->set_offset(known->second);
        } else if (start == StartPosition::earliest) {
          tp->set_offset(RdKafka::Topic::OFFSET_BEGINNING);
        } else if (const auto from =
                       detail::latest_start(*rk, tp->topic(), tp->partition(), created, *notes,
                                            std::chrono::seconds(2))) {
          tp->set_offset(*from);
          next_offsets[tp->partition()] = *from;
        } else {
          tp->set_offset(RdKafka::Topic::OFFSET_END);
        }
      }
      if (cooperative) {
        std::unique_ptr<RdKafka::Error> error{rk->incremental_assign(partitions)};
      } else {
        rk->assign(partitions);
      }
      assigned.store(true);
      if (on_assigned) on_assigned();
    } else {
      if (cooperative) {
        std::unique_ptr<RdKafka::Error> error{rk->incremental_unassign(partitions)};
      } else {
        rk->unassign();
      }
      assigned.store(false);
      if (err != RdKafka::ERR__REVOKE_PARTITIONS) {
        notes->always("error", "rebalance.error",
                      "session consumer " + group_id + ": " + detail::error_text(err));
      }
    }
  }
};

using EntryPtr = std::shared_ptr<Entry>;

}  // namespace

struct KafkaSessionPool::Impl {
  Impl(Hub& hub_ref, KafkaSessionPoolConfig cfg);
  ~Impl();

  void poll_loop(const std::stop_token& stop);
  void close_loop();
  void drain(Entry& entry, bool& more);
  void handle(Entry& entry, RdKafka::Message& message);
  void retire_locked(const EntryPtr& entry);  // moves an entry to the closer
  std::size_t sweep_idle();
  void finish_close(Entry& entry);
  void probe();
  SessionConsumerStatus status_of(const Entry& entry) const;
  std::string topic_for(const std::string& domain) const;
  void wake() const;

  Hub& hub;
  const KafkaSessionPoolConfig config;
  Router router;
  Template topic_template;
  Properties properties;
  detail::NoteLog notes;
  detail::BrokerState broker;
  ThreadFaults faults;  // both threads and librdkafka's callbacks; outlives the entries
  int event_fd = -1;

  mutable std::mutex mutex;
  mutable std::condition_variable assigned_cv;
  mutable std::condition_variable closed_cv;
  std::condition_variable closer_cv;
  bool running = false;
  bool stopping = false;
  std::map<std::pair<std::string, std::string>, EntryPtr, std::less<>> entries;
  std::deque<EntryPtr> to_close;
  std::size_t closing = 0;
  std::jthread poller;
  std::thread closer;
  std::unique_ptr<KafkaAdmin> admin;  // closer thread only

  std::chrono::steady_clock::time_point last_sweep = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_probe{};

  std::atomic<std::uint64_t> opened{0};
  std::atomic<std::uint64_t> closed{0};
  std::atomic<std::uint64_t> idle_closed{0};
  std::atomic<std::uint64_t> groups_deleted{0};
  std::atomic<std::uint64_t> group_delete_errors{0};
  std::atomic<std::uint64_t> rejected{0};
  std::atomic<std::uint64_t> received{0};
  std::atomic<std::uint64_t> published{0};
  std::array<std::atomic<std::uint64_t>, kSkipKinds> skipped{};
};

KafkaSessionPool::Impl::Impl(Hub& hub_ref, KafkaSessionPoolConfig cfg)
    : hub(hub_ref),
      config(std::move(cfg)),
      router(config.channel, config.event_type, config.payload, {"session", "domain"}),
      topic_template(Template::parse(config.topic_template, {"domain"})) {
  if (!find(config.properties, "bootstrap.servers")) {
    throw InvalidArgument(
        "KafkaSessionPool needs the librdkafka property bootstrap.servers (e.g. 127.0.0.1:9092)");
  }
  if (config.max_consumers == 0) throw InvalidArgument("max_consumers must be at least 1, got 0");
  if (config.idle_timeout.count() <= 0 || config.sweep_interval.count() <= 0) {
    throw InvalidArgument("idle_timeout and sweep_interval must be positive");
  }
  for (const auto& [domain, topic] : config.domains) {
    if (!valid_domain(domain) || topic.empty()) {
      throw InvalidArgument("domain '" + utf8_excerpt(domain, 80) + "' -> topic '" +
                            utf8_excerpt(topic, 80) +
                            "' is invalid: domains are 1-100 characters of A-Z a-z 0-9 . _ - "
                            "and need a topic");
    }
  }
  properties = merged(consumer_defaults(), config.properties);
  properties = merged(
      properties,
      {{"auto.offset.reset", config.start == StartPosition::earliest ? "earliest" : "latest"}});
  (void)detail::make_conf(properties);
  event_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (event_fd < 0) throw KafkaError("eventfd() failed for the session consumer pool");
}

KafkaSessionPool::Impl::~Impl() {
  if (event_fd >= 0) ::close(event_fd);
}

void KafkaSessionPool::Impl::wake() const {
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto n = ::write(event_fd, &one, sizeof one);
}

std::string KafkaSessionPool::Impl::topic_for(const std::string& domain) const {
  if (!config.domains.empty()) {
    const auto it = std::find_if(config.domains.begin(), config.domains.end(),
                                 [&](const auto& kv) { return kv.first == domain; });
    if (it == config.domains.end()) {
      std::string allowed;
      for (const auto& [name, topic] : config.domains) {
        if (!allowed.empty()) allowed += ", ";
        allowed += name;
      }
      throw InvalidArgument("domain '" + utf8_excerpt(domain, 80) +
                            "' is not configured; use one of: " + allowed);
    }
    return it->second;
  }
  if (!valid_domain(domain)) {
    throw InvalidArgument("domain '" + utf8_excerpt(domain, 80) +
                          "' is invalid: use 1-100 characters of A-Z a-z 0-9 . _ -");
  }
  std::string topic;
  (void)topic_template.render(RecordView{}, std::nullopt, {{"domain", domain}}, topic);
  return topic;
}

SessionConsumerStatus KafkaSessionPool::Impl::status_of(const Entry& e) const {
  SessionConsumerStatus s;
  s.session_id = e.session;
  s.domain = e.domain;
  s.group_id = e.group_id;
  s.topic = e.topic;
  s.channel = e.channel;
  s.created = detail::unix_seconds(e.created);
  s.last_active = static_cast<double>(e.last_active_ms.load()) / 1000.0;
  s.assigned = e.assigned.load();
  s.received = e.received.load();
  s.published = e.published.load();
  return s;
}

void KafkaSessionPool::Impl::handle(Entry& e, RdKafka::Message& message) {
  e.received.fetch_add(1, std::memory_order_relaxed);
  received.fetch_add(1, std::memory_order_relaxed);
  const RecordView record = detail::record_view(message);
  auto [position, inserted] = e.next_offsets.try_emplace(record.partition, record.offset);
  if (record.offset < position->second) return;
  position->second = record.offset + 1;
  auto routed = router.route(record, e.vars);
  const auto skip = [&](SkipKind kind, const std::string& detail) {
    const std::uint64_t count =
        skipped[static_cast<std::size_t>(kind)].fetch_add(1, std::memory_order_relaxed) + 1;
    detail::note_skip(notes, kind, count, record, detail);
  };
  if (const auto* s = std::get_if<Skip>(&routed)) {
    skip(s->kind, s->detail);
    return;
  }
  try {
    const auto outcome =
        publish_routed(hub, std::move(std::get<RoutedRecord>(routed)), record.value);
    if (const auto* refused = std::get_if<Skip>(&outcome)) {
      skip(refused->kind, refused->detail);
      return;
    }
    e.published.fetch_add(1, std::memory_order_relaxed);
    published.fetch_add(1, std::memory_order_relaxed);
  } catch (const Closed&) {
    notes.once("info", "hub.closed", "the hub is closed; Kafka records are no longer published");
  }
}

void KafkaSessionPool::Impl::drain(Entry& e, bool& more) {
  // Bounded per round so one busy session cannot starve the others.
  constexpr int kBatch = 500;
  for (int i = 0; i < kBatch; ++i) {
    std::unique_ptr<RdKafka::Message> message{e.consumer->consume(0)};
    switch (message->err()) {
      case RdKafka::ERR_NO_ERROR:
        if (broker.down()) {
          broker.set_up();
          notes.rearm("error.");
        }
        handle(e, *message);
        continue;
      case RdKafka::ERR__TIMED_OUT:
        return;
      case RdKafka::ERR__PARTITION_EOF:
        continue;
      default:
        broker.count_error();
        broker.set_last_error(message->errstr());
        notes.once("warning", "consume." + detail::error_name(message->err()),
                   "session consumer " + e.group_id + ": " + message->errstr());
        return;
    }
  }
  more = true;
}

void KafkaSessionPool::Impl::probe() {
  const auto now = std::chrono::steady_clock::now();
  if (now - last_probe < std::chrono::seconds(1)) return;
  last_probe = now;
  EntryPtr any;
  {
    std::lock_guard lock(mutex);
    if (entries.empty()) {
      broker.set_up();
      return;
    }
    any = entries.begin()->second;
  }
  std::unique_lock use(any->use, std::try_to_lock);
  if (!use || any->closing.load() || !any->consumer) return;
  RdKafka::Metadata* raw = nullptr;
  const auto code = any->consumer->metadata(false, nullptr, &raw, 1000);
  std::unique_ptr<RdKafka::Metadata> metadata{raw};
  if (code == RdKafka::ERR_NO_ERROR) {
    broker.set_up();
    notes.rearm("error.");
    notes.always("info", "broker.up", "session consumers: broker reachable again");
  }
}

void KafkaSessionPool::Impl::poll_loop(const std::stop_token& stop) {
  static constexpr std::string_view kWhere = "kafka session pool poll thread";
  bool more = false;
  std::vector<EntryPtr> snapshot;
  while (!stop.stop_requested()) {
    bool faulted = false;
    const bool ok = detail::contain_noted(faults, notes, kWhere, [&] {
      if (!more) {
        pollfd pfd{event_fd, POLLIN, 0};
        // The periodic pass also serves every consumer's queue well within
        // max.poll.interval.ms when no record arrives for a long time.
        (void)::poll(&pfd, 1, 1000);
      }
      std::uint64_t counter = 0;
      [[maybe_unused]] const auto n = ::read(event_fd, &counter, sizeof counter);
      if (stop.stop_requested()) return;
      more = false;
      {
        std::lock_guard lock(mutex);
        snapshot.clear();
        for (const auto& [key, entry] : entries) snapshot.push_back(entry);
      }
      for (const EntryPtr& e : snapshot) {
        if (e->closing.load()) continue;
        std::unique_lock use(e->use, std::try_to_lock);
        if (!use || !e->consumer) continue;
        // A fault abandons this session's record in hand, not the others' round.
        if (!detail::contain_noted(faults, notes, kWhere, [&] { drain(*e, more); })) {
          faulted = true;
        }
      }
      snapshot.clear();
      if (broker.down()) probe();
      if (std::chrono::steady_clock::now() - last_sweep >= config.sweep_interval) {
        last_sweep = std::chrono::steady_clock::now();
        sweep_idle();
      }
    });
    if (!ok || faulted) {
      snapshot.clear();
      detail::pause_after_fault(stop);
    }
  }
}

void KafkaSessionPool::Impl::retire_locked(const EntryPtr& e) {
  e->closing.store(true);
  to_close.push_back(e);
  ++closing;
}

void KafkaSessionPool::Impl::finish_close(Entry& e) {
  {
    std::lock_guard use(e.use);
    if (e.queue) {
      rd_kafka_queue_io_event_enable(e.queue.get(), -1, nullptr, 0);
      e.queue.reset();
    }
    if (e.consumer) {
      // Leaves the group now rather than when the broker's session times out.
      e.consumer->close();
      e.consumer.reset();
    }
  }
  closed.fetch_add(1);
  if (!config.delete_groups) return;
  try {
    if (!admin) admin = std::make_unique<KafkaAdmin>(config.properties);
    for (int attempt = 0; attempt < 5; ++attempt) {
      const auto results = admin->delete_groups({e.group_id}, std::chrono::seconds(5));
      const std::string error = results.empty() ? "no result" : results.front().second;
      if (error.empty() || error == "GROUP_ID_NOT_FOUND") {
        groups_deleted.fetch_add(1);
        return;
      }
      if (error != "NON_EMPTY_GROUP" && error != "COORDINATOR_LOAD_IN_PROGRESS" &&
          error != "COORDINATOR_NOT_AVAILABLE" && error != "NOT_COORDINATOR") {
        group_delete_errors.fetch_add(1);
        notes.once("warning", "delete_group." + error,
                   "cannot delete consumer group " + e.group_id + ": " + error);
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200 * (attempt + 1)));
    }
    group_delete_errors.fetch_add(1);
  } catch (const std::exception& ex) {
    group_delete_errors.fetch_add(1);
    notes.once("warning", "delete_group.error",
               "cannot delete consumer group " + e.group_id + ": " + ex.what());
  }
}

void KafkaSessionPool::Impl::close_loop() {
  static constexpr std::string_view kWhere = "kafka session pool closer thread";
  bool done = false;
  while (!done) {
    EntryPtr e;
    const bool ok = detail::contain_noted(faults, notes, kWhere, [&] {
      {
        std::unique_lock lock(mutex);
        closer_cv.wait(lock, [&] { return stopping || !to_close.empty(); });
        if (to_close.empty()) {
          done = true;  // stopping and nothing left
          return;
        }
        e = std::move(to_close.front());
        to_close.pop_front();
      }
      finish_close(*e);
    });
    if (e) {
      // Taken off the queue, closed or abandoned by a fault: no longer closing.
      {
        std::lock_guard lock(mutex);
        --closing;
      }
      closed_cv.notify_all();
    }
    if (!ok) {
      std::unique_lock lock(mutex);
      closer_cv.wait_for(lock, detail::kFaultPause, [&] { return stopping; });
    }
  }
  admin.reset();
}

KafkaSessionPool::KafkaSessionPool(Hub& hub, KafkaSessionPoolConfig config)
    : impl_(std::make_unique<Impl>(hub, std::move(config))) {}

KafkaSessionPool::~KafkaSessionPool() {
  stop();
}

void KafkaSessionPool::start() {
  Impl& p = *impl_;
  std::lock_guard lock(p.mutex);
  if (p.running) return;
  p.running = true;
  p.stopping = false;
  p.last_sweep = std::chrono::steady_clock::now();
  p.closer = std::thread([&p] { p.close_loop(); });
  p.poller = std::jthread([&p](std::stop_token stop) { p.poll_loop(stop); });
}

void KafkaSessionPool::stop() {
  Impl& p = *impl_;
  {
    std::lock_guard lock(p.mutex);
    if (!p.running) return;
    p.running = false;
    for (const auto& [key, e] : p.entries) p.retire_locked(e);
    p.entries.clear();
  }
  p.poller.request_stop();
  p.wake();
  if (p.poller.joinable()) p.poller.join();
  {
    std::lock_guard lock(p.mutex);
    p.stopping = true;
  }
  p.closer_cv.notify_one();
  if (p.closer.joinable()) p.closer.join();
}

bool KafkaSessionPool::running() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->running;
}

SessionConsumerStatus KafkaSessionPool::open(const std::string& session_id,
                                             const std::string& domain) {
  Impl& p = *impl_;
  validate_session_id(session_id);
  const std::string topic = p.topic_for(domain);
  std::lock_guard lock(p.mutex);
  if (!p.running) throw Closed("the Kafka session pool is not running");
  const auto key = std::make_pair(session_id, domain);
  if (const auto it = p.entries.find(key); it != p.entries.end()) {
    it->second->last_active_ms.store(now_ms());
    return p.status_of(*it->second);
  }
  if (p.entries.size() >= p.config.max_consumers) {
    p.rejected.fetch_add(1);
    throw KafkaPoolFull(
        "the Kafka session pool is full: " + std::to_string(p.config.max_consumers) +
            " consumers (max_consumers); close idle sessions or raise the limit",
        p.config.max_consumers);
  }
  auto e = std::make_shared<Entry>();
  e->session = session_id;
  e->domain = domain;
  e->topic = topic;
  e->start = p.config.start;
  e->created = SystemClock::now();
  e->last_active_ms.store(now_ms());
  e->vars = {{"session", session_id}, {"domain", domain}};
  const auto seconds =
      std::chrono::duration_cast<std::chrono::seconds>(e->created.time_since_epoch()).count();
  e->group_id = detail::group_safe(p.config.group_prefix) + "-" + detail::group_safe(domain) + "-" +
                detail::session_digest(session_id) + "-" + std::to_string(seconds) + "-" +
                detail::random_hex8();
  {
    std::string channel;
    // The channel template may only use {session}, {domain} and literals here.
    (void)p.router.channel_template().render(RecordView{}, std::nullopt, e->vars, channel);
    e->channel = channel;
  }
  e->notes = &p.notes;
  e->faults = &p.faults;
  e->events = std::make_unique<detail::ClientEvents>(p.notes, p.broker,
                                                     "session consumer " + e->group_id, &p.faults);
  Entry* raw = e.get();
  e->on_assigned = [&p] {
    { std::lock_guard l(p.mutex); }
    p.assigned_cv.notify_all();
  };
  auto conf = detail::make_conf(merged(p.properties, {{"group.id", e->group_id}}));
  detail::set_callback(*conf, "event_cb", e->events.get());
  detail::set_callback(*conf, "rebalance_cb", static_cast<RdKafka::RebalanceCb*>(raw));
  std::string errstr;
  e->consumer.reset(RdKafka::KafkaConsumer::create(conf.get(), errstr));
  if (!e->consumer) throw KafkaError("cannot create a session consumer: " + errstr);
  e->queue.reset(rd_kafka_queue_get_consumer(e->consumer->c_ptr()));
  if (e->queue) {
    static const std::uint64_t kOne = 1;
    rd_kafka_queue_io_event_enable(e->queue.get(), p.event_fd, &kOne, sizeof kOne);
  }
  const auto code = e->consumer->subscribe({topic});
  if (code != RdKafka::ERR_NO_ERROR) {
    rd_kafka_queue_io_event_enable(e->queue.get(), -1, nullptr, 0);
    e->queue.reset();
    e->consumer->close();
    throw KafkaError(
        "cannot subscribe a session consumer to '" + topic + "': " + detail::error_text(code),
        detail::error_name(code));
  }
  p.entries.emplace(key, e);
  p.opened.fetch_add(1);
  p.wake();
  return p.status_of(*e);
}

bool KafkaSessionPool::close(const std::string& session_id, const std::string& domain) {
  Impl& p = *impl_;
  {
    std::lock_guard lock(p.mutex);
    const auto it = p.entries.find(std::make_pair(session_id, domain));
    if (it == p.entries.end()) return false;
    p.retire_locked(it->second);
    p.entries.erase(it);
  }
  p.closer_cv.notify_one();
  return true;
}

std::size_t KafkaSessionPool::close_session(const std::string& session_id) {
  Impl& p = *impl_;
  std::size_t n = 0;
  {
    std::lock_guard lock(p.mutex);
    for (auto it = p.entries.begin(); it != p.entries.end();) {
      if (it->first.first == session_id) {
        p.retire_locked(it->second);
        it = p.entries.erase(it);
        ++n;
      } else {
        ++it;
      }
    }
  }
  if (n > 0) p.closer_cv.notify_one();
  return n;
}

std::size_t KafkaSessionPool::Impl::sweep_idle() {
  std::size_t n = 0;
  {
    std::lock_guard lock(mutex);
    const std::int64_t now = now_ms();
    for (auto it = entries.begin(); it != entries.end();) {
      const EntryPtr e = it->second;
      // Lock order: pool, then hub.
      if (hub.subscriber_count(e->channel) > 0) {
        e->last_active_ms.store(now);
      } else if (now - e->last_active_ms.load() >= config.idle_timeout.count()) {
        retire_locked(e);
        it = entries.erase(it);
        ++n;
        continue;
      }
      ++it;
    }
  }
  if (n > 0) {
    idle_closed.fetch_add(n);
    closer_cv.notify_one();
  }
  return n;
}

std::size_t KafkaSessionPool::sweep() {
  return impl_->sweep_idle();
}

bool KafkaSessionPool::wait_assigned(const std::string& session_id, const std::string& domain,
                                     std::chrono::milliseconds timeout) const {
  const Impl& p = *impl_;
  std::unique_lock lock(p.mutex);
  return p.assigned_cv.wait_for(lock, timeout, [&] {
    const auto it = p.entries.find(std::make_pair(session_id, domain));
    return it != p.entries.end() && it->second->assigned.load();
  });
}

bool KafkaSessionPool::wait_closed(std::chrono::milliseconds timeout) const {
  const Impl& p = *impl_;
  std::unique_lock lock(p.mutex);
  return p.closed_cv.wait_for(lock, timeout, [&] { return p.closing == 0; });
}

KafkaSessionPoolHealth KafkaSessionPool::health() const {
  const Impl& p = *impl_;
  KafkaSessionPoolHealth h;
  {
    std::lock_guard lock(p.mutex);
    h.running = p.running;
    h.closing = p.closing;
    std::string last;
    for (const auto& [key, e] : p.entries) {
      if (key.first != last) {
        ++h.active_sessions;
        last = key.first;
      }
      h.consumers.push_back(p.status_of(*e));
    }
    h.total_consumers = p.entries.size();
  }
  h.max_consumers = p.config.max_consumers;
  h.opened = p.opened.load();
  h.closed = p.closed.load();
  h.idle_closed = p.idle_closed.load();
  h.groups_deleted = p.groups_deleted.load();
  h.group_delete_errors = p.group_delete_errors.load();
  h.rejected = p.rejected.load();
  h.received = p.received.load();
  h.published = p.published.load();
  for (std::size_t i = 0; i < kSkipKinds; ++i) h.skipped[i] = p.skipped[i].load();
  h.errors = p.broker.errors();
  h.last_error = p.broker.last_error();
  h.log_notes_dropped = p.notes.dropped();
  h.log_notes_suppressed = p.notes.suppressed();
  h.thread_faults = p.faults.report();
  if (!h.running) {
    h.status = "stopped";
    h.reason = "the Kafka session pool is not running";
  } else if (p.broker.down() || p.broker.fatal()) {
    h.status = "degraded";
    h.reason = p.broker.reason();
  } else if (h.total_consumers >= h.max_consumers) {
    h.status = "degraded";
    h.reason = "session consumer pool full (" + std::to_string(h.total_consumers) + "/" +
               std::to_string(h.max_consumers) + ")";
  } else {
    h.status = "healthy";
  }
  detail::degrade_on_fault(h.thread_faults, h.status, h.reason);
  return h;
}

std::vector<LogNote> KafkaSessionPool::take_log_notes() {
  return impl_->notes.take();
}

}  // namespace sessionstream::kafka
