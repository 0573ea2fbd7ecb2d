#include <hiredis.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <stop_token>
#include <thread>
#include <variant>

#include "common/log_notes.hpp"
#include "common/random.hpp"
#include "common/thread_fault_notes.hpp"
#include "sessionstream/common/errors.hpp"
#include "sessionstream/common/utf8.hpp"
#include "sessionstream/sources/redis/stream_bus.hpp"
#include "sources/redis/connection.hpp"

namespace sessionstream::redis {

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// KEYS: epoch, seq, events. ARGV: epoch hex, max_len, channel, type, data, json.
// The epoch check makes a publish from a node that has not seen a reset of
// the cluster fail instead of mixing two id spaces in one stream.
constexpr std::string_view kPublishScript = R"lua(
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return redis.error_reply('EPOCH') end
local seq = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], string.format('%d-0', seq),
           'c', ARGV[3], 't', ARGV[4], 'd', ARGV[5], 'j', ARGV[6])
return seq
)lua";

// KEYS: epoch, epoch base, seq. ARGV: a fresh epoch hex. Returns {epoch, base}:
// the base is the seq the epoch started after, so a node that moves to a new
// epoch delivers every event of it, not only those after its own first look.
// Same effect as SET NX, with the base written atomically beside it.
constexpr std::string_view kEpochScript = R"lua(
local epoch = redis.call('GET', KEYS[1])
if epoch then return {epoch, redis.call('GET', KEYS[2])} end
local base = redis.call('GET', KEYS[3]) or '0'
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], base)
return {ARGV[1], base}
)lua";

// KEYS: epoch, epoch base, seq, events. ARGV: old epoch hex, new epoch hex.
// Redis came back with a counter below what was already read (unpersisted
// writes lost): the seqs after it would name other events, so the cluster
// moves to a new epoch. The counter is raised to the stream's top so that the
// next XADD is accepted.
constexpr std::string_view kRebaseScript = R"lua(
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local seq = tonumber(redis.call('GET', KEYS[3]) or '0')
local top = redis.call('XREVRANGE', KEYS[4], '+', '-', 'COUNT', 1)
if top[1] then
  local t = tonumber(string.match(top[1][1], '^(%d+)'))
  if t and t > seq then seq = t end
end
local text = string.format('%d', seq)
redis.call('SET', KEYS[3], text)
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SET', KEYS[2], text)
return 1
)lua";

constexpr std::size_t kReadCount = 512;
constexpr std::size_t kReplayBatch = 1000;
constexpr auto kLostNoteInterval = 10s;
constexpr std::size_t kMaxPrefix = 200;

std::uint64_t fresh_epoch() {
  std::uint16_t salt = 0;
  detail::secure_random(&salt, sizeof salt);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  return (static_cast<std::uint64_t>(ms) << 12) | (salt & 0xFFFU);
}

std::string hex(std::uint64_t value) {
  char buffer[17];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value, 16);
  return {buffer, result.ptr};
}

std::optional<std::uint64_t> parse_number(std::string_view text, int base) {
  std::uint64_t value = 0;
  if (text.empty()) return std::nullopt;
  const auto result = std::from_chars(text.data(), text.data() + text.size(), value, base);
  if (result.ec != std::errc{} || result.ptr != text.data() + text.size()) return std::nullopt;
  return value;
}

std::string_view text(const redisReply& reply) {
  if (reply.str == nullptr) return {};
  return {reply.str, reply.len};
}

bool is_string(const redisReply* reply) {
  return reply != nullptr &&
         (reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_STATUS);
}

// A stream entry id "<ms>-<seq>"; the bus writes "<event seq>-0".
struct EntryId {
  std::uint64_t major = 0;
  std::uint64_t minor = 0;
  [[nodiscard]] std::string text() const {
    return std::to_string(major) + "-" + std::to_string(minor);
  }
};

std::optional<EntryId> parse_entry_id(std::string_view id) {
  const auto dash = id.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  const auto major = parse_number(id.substr(0, dash), 10);
  const auto minor = parse_number(id.substr(dash + 1), 10);
  if (!major || !minor) return std::nullopt;
  return EntryId{*major, *minor};
}

struct Decoded {
  std::string channel;
  std::string type;
  std::string data;
  bool json = false;
};

struct Skip {
  BusSkipKind kind;
  std::string detail;
};

// The fields of one entry as an event, or why they are not one. With
// validate_all the hub's checks run here too (replay builds events itself);
// without, only the channel is checked and publish_sequenced does the rest.
std::variant<Decoded, Skip> decode(const redisReply* fields, const Hub& hub, bool validate_all) {
  if (fields == nullptr || fields->type != REDIS_REPLY_ARRAY || fields->elements % 2 != 0) {
    return Skip{BusSkipKind::missing_field, "the entry has no field list"};
  }
  std::optional<std::string_view> c, t, d, j;
  for (std::size_t i = 0; i + 1 < fields->elements; i += 2) {
    const redisReply* name = fields->element[i];
    const redisReply* value = fields->element[i + 1];
    if (!is_string(name) || !is_string(value)) continue;
    const std::string_view n = text(*name);
    if (n == "c") c = text(*value);
    if (n == "t") t = text(*value);
    if (n == "d") d = text(*value);
    if (n == "j") j = text(*value);
  }
  if (!c || !t || !d || !j) {
    std::string missing;
    const auto add = [&missing](bool present, const char* name) {
      if (present) return;
      if (!missing.empty()) missing += ", ";
      missing += name;
    };
    add(c.has_value(), "c");
    add(t.has_value(), "t");
    add(d.has_value(), "d");
    add(j.has_value(), "j");
    return Skip{BusSkipKind::missing_field, "missing field(s) " + missing};
  }
  if (*j != "0" && *j != "1") {
    return Skip{BusSkipKind::missing_field,
                "field j is '" + utf8_excerpt(*j, 20) + "', not \"0\" or \"1\""};
  }
  try {
    Hub::validate_channel_name(*c, hub.config().max_channel_name);
  } catch (const InvalidArgument& e) {
    return Skip{BusSkipKind::invalid_channel, e.what()};
  }
  if (validate_all) {
    try {
      hub.validate_event(*c, *d, *t, *j == "1");
    } catch (const InvalidUtf8& e) {
      return Skip{BusSkipKind::invalid_utf8, e.what()};
    } catch (const PayloadTooLarge& e) {
      return Skip{BusSkipKind::too_large, e.what()};
    } catch (const InvalidArgument& e) {
      return Skip{BusSkipKind::invalid_type, e.what()};
    }
  }
  return Decoded{std::string{*c}, t->empty() ? std::string{"message"} : std::string{*t},
                 std::string{*d}, *j == "1"};
}

using sessionstream::detail::NoteLog;

// One lazily opened Redis connection, counted in health while open. Owned by
// one thread at a time (its user holds the mutex guarding it).
class Link {
 public:
  Link(const RedisStreamBusConfig& config, std::atomic<std::size_t>& open, std::string name)
      : config_(config), open_(open), name_(std::move(name)) {}
  ~Link() { reset(); }
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;

  // The open connection, or a new one (throws Unavailable).
  Connection& get() {
    if (connection_ && connection_->broken()) reset();
    if (!connection_) {
      connection_ = std::make_unique<Connection>(config_.endpoint, config_.connect_timeout,
                                                 config_.io_timeout);
      open_.fetch_add(1, std::memory_order_relaxed);
      // Named so an operator (or a test) can tell the bus's connections apart
      // in CLIENT LIST; a server refusing names is no reason to fail.
      (void)connection_->command({"CLIENT", "SETNAME", name_});
    }
    return *connection_;
  }
  [[nodiscard]] bool open() const noexcept { return connection_ != nullptr; }
  void reset() noexcept {
    if (!connection_) return;
    connection_.reset();
    open_.fetch_sub(1, std::memory_order_relaxed);
  }

 private:
  const RedisStreamBusConfig& config_;
  std::atomic<std::size_t>& open_;
  const std::string name_;
  std::unique_ptr<Connection> connection_;
};

std::string client_name(std::string_view prefix, std::string_view role) {
  return "sessionstream-bus:" + std::string{prefix} + ":" + std::string{role};
}

void validate(const Hub& hub, const RedisStreamBusConfig& config) {
  if (hub.sequencing() != Sequencing::external) {
    throw InvalidArgument(
        "RedisStreamBus needs a hub with external sequencing (HubConfig.sequencing = "
        "Sequencing::external, Hub(sequencing=\"external\") in Python): the bus numbers events "
        "for every node, so the hub must not number them itself");
  }
  if (config.max_len < 1) {
    throw InvalidArgument("max_len must be at least 1, got " + std::to_string(config.max_len));
  }
  const auto& prefix = config.key_prefix;
  const bool printable =
      std::all_of(prefix.begin(), prefix.end(), [](char ch) { return ch > 0x20 && ch < 0x7F; });
  if (prefix.empty() || prefix.size() > kMaxPrefix || !printable) {
    throw InvalidArgument("key_prefix '" + utf8_excerpt(prefix, 80) + "' is invalid: use 1-" +
                          std::to_string(kMaxPrefix) +
                          " printable ASCII characters without spaces");
  }
  if (config.connect_timeout.count() <= 0 || config.io_timeout.count() <= 0 ||
      config.catch_up_timeout.count() <= 0) {
    throw InvalidArgument("connect_timeout, io_timeout and catch_up_timeout must be positive");
  }
}

}  // namespace

const char* to_string(BusSkipKind kind) noexcept {
  switch (kind) {
    case BusSkipKind::missing_field:
      return "missing_field";
    case BusSkipKind::invalid_channel:
      return "invalid_channel";
    case BusSkipKind::invalid_type:
      return "invalid_type";
    case BusSkipKind::invalid_utf8:
      return "invalid_utf8";
    case BusSkipKind::too_large:
      return "too_large";
    case BusSkipKind::bad_id:
      return "bad_id";
  }
  return "unknown";
}

// The bus's state, shared with the hub as its replay source. Locks: each of
// publish_mutex_, replay_mutex_, progress_mutex_, status_mutex_ is taken alone
// and never held while calling into the hub (the hub calls replay() and
// catch_up() with none of its locks held).
class RedisStreamBus::Impl : public ReplaySource {
 public:
  Impl(Hub& hub, RedisStreamBusConfig config)
      : hub_(hub),
        config_(std::move(config)),
        events_key_(config_.key_prefix + ":events"),
        seq_key_(config_.key_prefix + ":seq"),
        epoch_key_(config_.key_prefix + ":epoch"),
        base_key_(config_.key_prefix + ":epoch_base"),
        endpoint_(config_.endpoint.redacted()),
        publisher_(config_, connections_, client_name(config_.key_prefix, "publisher")),
        replayer_(config_, connections_, client_name(config_.key_prefix, "replay")) {}

  void start(const std::shared_ptr<Impl>& self) {
    std::lock_guard lock(lifecycle_mutex_);
    if (running_.load()) return;
    {
      std::lock_guard progress(progress_mutex_);
      stopping_ = false;
    }
    running_.store(true);
    hub_.add_replay_source(self);
    try {
      reader_ = std::jthread([this](const std::stop_token& stop) { run(stop); });
    } catch (...) {
      hub_.remove_replay_source(this);
      running_.store(false);
      throw;
    }
  }

  void stop() {
    std::lock_guard lock(lifecycle_mutex_);
    if (!running_.load()) return;
    reader_.request_stop();
    if (reader_.joinable()) reader_.join();
    hub_.remove_replay_source(this);
    running_.store(false);
    {
      std::lock_guard progress(progress_mutex_);
      stopping_ = true;
      connected_ = false;
    }
    progress_cv_.notify_all();
    {
      std::lock_guard publish(publish_mutex_);
      publisher_.reset();
    }
    std::lock_guard replay(replay_mutex_);
    replayer_.reset();
  }

  [[nodiscard]] bool running() const { return running_.load(); }

  bool wait_ready(std::chrono::milliseconds timeout) const {
    std::unique_lock lock(progress_mutex_);
    return progress_cv_.wait_for(lock, timeout,
                                 [this] { return connected_ && adopted_epoch_ != 0; });
  }

  std::string publish(std::string_view channel, std::string data, std::string type, bool json);
  std::optional<std::vector<EventPtr>> replay(std::string_view channel, std::uint64_t after_seq,
                                              std::uint64_t through_seq) override;
  bool catch_up(std::uint64_t epoch, std::uint64_t seq) override;
  [[nodiscard]] RedisStreamBusHealth health() const;
  std::vector<LogNote> take_log_notes() { return notes_.take(); }
  [[nodiscard]] const std::string& stream_key() const noexcept { return events_key_; }

 private:
  struct ClusterEpoch {
    std::uint64_t epoch = 0;
    std::optional<std::uint64_t> base;  // seq it started after, when recorded
  };

  void run(const std::stop_token& stop);
  void sync(Connection& connection);
  void read_loop(Connection& connection, const std::stop_token& stop);
  void handle_entry(const redisReply& entry);
  void note_lost(std::uint64_t first, std::uint64_t through);
  void skip(BusSkipKind kind, std::string_view id, const std::string& detail);
  void record_error(std::string_view what);
  void set_progress(bool connected);
  std::optional<std::vector<EventPtr>> replay_on(Connection& connection, std::string_view channel,
                                                 std::uint64_t after_seq, std::uint64_t through_seq,
                                                 std::uint64_t epoch);

  ClusterEpoch read_or_create_epoch(Connection& connection);
  std::uint64_t read_seq(Connection& connection);
  std::uint64_t parse_epoch(const redisReply& reply) const;
  Reply run_script(Connection& connection, std::string_view script, std::string& sha,
                   const std::vector<std::string_view>& keys_and_args, std::size_t key_count);

  Hub& hub_;
  const RedisStreamBusConfig config_;
  const std::string events_key_;
  const std::string seq_key_;
  const std::string epoch_key_;
  const std::string base_key_;
  const std::string endpoint_;
  NoteLog notes_;
  ThreadFaults faults_;  // the reader thread

  std::mutex lifecycle_mutex_;  // start/stop
  std::atomic<bool> running_{false};
  std::atomic<std::size_t> connections_{0};

  // Latest cluster epoch seen by the reader or a publisher; 0 while unknown.
  std::atomic<std::uint64_t> cluster_epoch_{0};

  // Reader-thread state; a restarted reader continues from it (the join in
  // stop() orders the two threads' accesses).
  EntryId last_id_{};
  std::uint64_t last_seq_ = 0;
  bool ever_connected_ = false;
  bool hub_closed_ = false;
  Clock::time_point last_lost_note_{};
  std::uint64_t lost_unnoted_ = 0;

  // What the reader has brought into the hub; waited on by catch_up and
  // wait_ready, and by the reader between reconnect attempts.
  mutable std::mutex progress_mutex_;
  mutable std::condition_variable_any progress_cv_;
  bool connected_ = false;
  bool stopping_ = false;
  std::uint64_t adopted_epoch_ = 0;
  std::uint64_t read_through_ = 0;

  std::mutex publish_mutex_;
  Link publisher_;
  std::string publish_sha_;

  std::mutex replay_mutex_;
  Link replayer_;

  mutable std::mutex status_mutex_;
  std::string down_reason_;
  std::string last_error_;

  std::atomic<std::uint64_t> published_{0};
  std::atomic<std::uint64_t> received_{0};
  std::atomic<std::uint64_t> duplicates_{0};
  std::atomic<std::uint64_t> lost_{0};
  std::array<std::atomic<std::uint64_t>, kBusSkipKinds> skipped_{};
  std::atomic<std::uint64_t> reconnects_{0};
  std::atomic<std::uint64_t> errors_{0};
  std::atomic<std::uint64_t> replays_{0};
  std::atomic<std::uint64_t> replayed_events_{0};
  std::atomic<std::uint64_t> replay_gaps_{0};

  // Last: joined (by stop()) before anything it uses is destroyed.
  std::jthread reader_;
};

std::uint64_t RedisStreamBus::Impl::parse_epoch(const redisReply& reply) const {
  if (reply.type == REDIS_REPLY_NIL) return 0;
  const auto value = is_string(&reply) ? parse_number(text(reply), 16) : std::nullopt;
  if (!value || *value == 0 || text(reply).size() > 16) {
    throw Unavailable("Redis key " + epoch_key_ + " at " + endpoint_ + " holds '" +
                      utf8_excerpt(text(reply), 40) +
                      "', not a cluster epoch (hex); delete the key to start a new epoch");
  }
  return *value;
}

Reply RedisStreamBus::Impl::run_script(Connection& connection, std::string_view script,
                                       std::string& sha,
                                       const std::vector<std::string_view>& keys_and_args,
                                       std::size_t key_count) {
  const std::string count = std::to_string(key_count);
  const auto call = [&](std::string_view verb, std::string_view body) {
    std::vector<std::string_view> args{verb, body, count};
    args.insert(args.end(), keys_and_args.begin(), keys_and_args.end());
    return connection.command(args);
  };
  if (sha.empty()) {
    Reply loaded = connection.command({"SCRIPT", "LOAD", script});
    if (loaded->type != REDIS_REPLY_STRING) {
      throw Unavailable("Redis at " + endpoint_ +
                        " refused SCRIPT LOAD: " + std::string{text(*loaded)});
    }
    sha = std::string{text(*loaded)};
  }
  Reply reply = call("EVALSHA", sha);
  // The script cache is empty after a restart or SCRIPT FLUSH; EVAL caches it again.
  if (reply->type == REDIS_REPLY_ERROR && text(*reply).starts_with("NOSCRIPT")) {
    reply = call("EVAL", script);
  }
  return reply;
}

RedisStreamBus::Impl::ClusterEpoch RedisStreamBus::Impl::read_or_create_epoch(
    Connection& connection) {
  const std::string fresh = hex(fresh_epoch());
  const Reply reply =
      connection.command({"EVAL", kEpochScript, "3", epoch_key_, base_key_, seq_key_, fresh});
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
    throw Unavailable("Redis at " + endpoint_ +
                      " did not return the cluster epoch: " + std::string{text(*reply)});
  }
  ClusterEpoch out;
  out.epoch = parse_epoch(*reply->element[0]);
  if (out.epoch == 0) throw Unavailable("Redis at " + endpoint_ + " returned no cluster epoch");
  if (is_string(reply->element[1])) out.base = parse_number(text(*reply->element[1]), 10);
  cluster_epoch_.store(out.epoch);
  return out;
}

std::uint64_t RedisStreamBus::Impl::read_seq(Connection& connection) {
  const Reply reply = connection.command({"GET", seq_key_});
  if (reply->type == REDIS_REPLY_NIL) return 0;
  const auto value = is_string(reply.get()) ? parse_number(text(*reply), 10) : std::nullopt;
  if (!value) {
    throw Unavailable("Redis key " + seq_key_ + " at " + endpoint_ + " holds '" +
                      utf8_excerpt(text(*reply), 40) + "', not a sequence number");
  }
  return *value;
}

void RedisStreamBus::Impl::record_error(std::string_view what) {
  errors_.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard lock(status_mutex_);
  last_error_ = std::string{what};
}

void RedisStreamBus::Impl::set_progress(bool connected) {
  {
    std::lock_guard lock(progress_mutex_);
    connected_ = connected;
    adopted_epoch_ = connected ? hub_.epoch() : adopted_epoch_;
    read_through_ = last_seq_;
  }
  progress_cv_.notify_all();
}

// Connects the hub to the cluster's id space: adopts the cluster epoch when
// the hub is in another, else continues from what this node read.
void RedisStreamBus::Impl::sync(Connection& connection) {
  for (int attempt = 0;; ++attempt) {
    const ClusterEpoch cluster = read_or_create_epoch(connection);
    const std::uint64_t head = read_seq(connection);
    const std::uint64_t hub_epoch = hub_.epoch();
    std::uint64_t previous = 0;
    {
      std::lock_guard lock(progress_mutex_);
      previous = adopted_epoch_;
    }
    if (hub_epoch != cluster.epoch) {
      // First contact: history before it is reachable through replay, live
      // delivery starts at the head. A later change (Redis lost its data):
      // every event of the new epoch is delivered, from its base.
      const std::uint64_t start =
          previous != 0 && cluster.base && *cluster.base <= head ? *cluster.base : head;
      hub_.adopt_epoch(cluster.epoch, start);
      last_seq_ = start;
      last_id_ = EntryId{start, 0};
      notes_.always("info", "epoch.adopted",
                    "redis stream bus: cluster epoch " + hex(cluster.epoch) + " at seq " +
                        std::to_string(start) + " (" + events_key_ + " at " + endpoint_ + ")");
      return;
    }
    // Same epoch: a reconnect, or a bus restarted on a hub that already reads
    // this cluster (the hub's head says how far).
    if (const auto id = EventId::parse(hub_.head_id()); id && id->epoch == hub_epoch) {
      if (id->seq > last_seq_) {
        last_seq_ = id->seq;
        last_id_ = EntryId{id->seq, 0};
      }
    }
    if (head >= last_seq_) return;
    if (attempt > 0) {
      throw Unavailable("Redis at " + endpoint_ + " keeps returning " + seq_key_ + " " +
                        std::to_string(head) + " below the " + std::to_string(last_seq_) +
                        " already read");
    }
    notes_.always("warning", "epoch.rebase",
                  "redis stream bus: " + seq_key_ + " is " + std::to_string(head) +
                      " but this node already read through " + std::to_string(last_seq_) +
                      " (Redis lost writes); starting a new cluster epoch");
    const std::string old_hex = hex(cluster.epoch);
    const std::string new_hex = hex(fresh_epoch());
    const Reply reply = connection.command({"EVAL", kRebaseScript, "4", epoch_key_, base_key_,
                                            seq_key_, events_key_, old_hex, new_hex});
    if (reply->type == REDIS_REPLY_ERROR) {
      throw Unavailable("Redis at " + endpoint_ +
                        " refused the epoch rebase: " + std::string{text(*reply)});
    }
  }
}

void RedisStreamBus::Impl::skip(BusSkipKind kind, std::string_view id, const std::string& detail) {
  skipped_[static_cast<std::size_t>(kind)].fetch_add(1, std::memory_order_relaxed);
  notes_.once("warning", std::string{"skip."} + to_string(kind),
              "redis stream bus: skipped entry " + utf8_excerpt(id, 48) + " of " + events_key_ +
                  " (" + to_string(kind) + "): " + utf8_excerpt(detail, 200));
}

void RedisStreamBus::Impl::note_lost(std::uint64_t first, std::uint64_t through) {
  lost_unnoted_ += through - first + 1;
  const auto now = Clock::now();
  // A reader that fell behind loses many ranges in a row: one note per interval.
  if (last_lost_note_ != Clock::time_point{} && now - last_lost_note_ < kLostNoteInterval) return;
  last_lost_note_ = now;
  notes_.always("warning", "lost",
                "redis stream bus: " + std::to_string(lost_unnoted_) +
                    " event(s) were trimmed from " + events_key_ +
                    " before this node read them (latest through seq " + std::to_string(through) +
                    "); subscribers got a gap frame. Raise max_len (" +
                    std::to_string(config_.max_len) + ") if this node is often this far behind");
  lost_unnoted_ = 0;
}

void RedisStreamBus::Impl::handle_entry(const redisReply& entry) {
  received_.fetch_add(1, std::memory_order_relaxed);
  if (entry.type != REDIS_REPLY_ARRAY || entry.elements != 2 || !is_string(entry.element[0])) {
    skip(BusSkipKind::bad_id, "?", "the entry is not an [id, fields] pair");
    return;
  }
  const std::string_view id_text = text(*entry.element[0]);
  const auto id = parse_entry_id(id_text);
  if (!id) {
    skip(BusSkipKind::bad_id, id_text, "the id is not <number>-<number>");
    return;
  }
  last_id_ = *id;
  const std::uint64_t seq = id->major;
  if (id->minor != 0) {
    // Not written by a bus; its number still counts as taken, so the next
    // entry is not mistaken for one after a hole.
    last_seq_ = std::max(last_seq_, seq);
    skip(BusSkipKind::bad_id, id_text, "the bus writes ids <seq>-0");
    return;
  }
  if (seq <= last_seq_) {
    duplicates_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (seq > last_seq_ + 1) {
    if (!hub_closed_) hub_.mark_lost(seq - 1);
    lost_.fetch_add(seq - 1 - last_seq_, std::memory_order_relaxed);
    note_lost(last_seq_ + 1, seq - 1);
  }
  last_seq_ = seq;
  auto decoded = decode(entry.element[1], hub_, false);
  if (auto* skipped = std::get_if<Skip>(&decoded)) {
    skip(skipped->kind, id_text, skipped->detail);
    return;
  }
  if (hub_closed_) return;
  auto& event = std::get<Decoded>(decoded);
  try {
    const EventPtr published =
        hub_.publish_sequenced(event.channel, std::move(event.data), std::move(event.type),
                               event.json, EventId{hub_.epoch(), seq});
    if (!published) duplicates_.fetch_add(1, std::memory_order_relaxed);
  } catch (const InvalidUtf8& e) {
    skip(BusSkipKind::invalid_utf8, id_text, e.what());
  } catch (const PayloadTooLarge& e) {
    skip(BusSkipKind::too_large, id_text, e.what());
  } catch (const InvalidArgument& e) {
    skip(BusSkipKind::invalid_type, id_text, e.what());
  } catch (const Closed&) {
    hub_closed_ = true;
    notes_.once("info", "hub.closed",
                "redis stream bus: the hub is closed; stream entries are no longer published");
  }
}

void RedisStreamBus::Impl::read_loop(Connection& connection, const std::stop_token& stop) {
  const std::string count = std::to_string(kReadCount);
  while (!stop.stop_requested()) {
    const std::string from = last_id_.text();
    // The GET runs after XREAD returns: when it still names the adopted epoch,
    // every entry read belongs to it (a flush in between would show here).
    connection.append({"XREAD", "COUNT", count, "BLOCK", "200", "STREAMS", events_key_, from});
    connection.append({"GET", epoch_key_});
    const Reply entries = connection.read_reply();
    const Reply epoch = connection.read_reply();
    if (entries->type == REDIS_REPLY_ERROR) {
      throw Unavailable("Redis at " + endpoint_ + " refused XREAD on " + events_key_ + ": " +
                        std::string{text(*entries)});
    }
    if (parse_epoch(*epoch) != hub_.epoch()) {
      notes_.always("warning", "epoch.changed",
                    "redis stream bus: the cluster epoch in " + epoch_key_ +
                        " changed (Redis lost its data or another node started a new epoch); "
                        "ids of the old epoch now get a reset");
      sync(connection);
      set_progress(true);
      continue;
    }
    if (entries->type == REDIS_REPLY_ARRAY) {
      for (std::size_t s = 0; s < entries->elements; ++s) {
        const redisReply* stream = entries->element[s];
        if (stream->type != REDIS_REPLY_ARRAY || stream->elements != 2 ||
            stream->element[1]->type != REDIS_REPLY_ARRAY) {
          continue;
        }
        const redisReply* list = stream->element[1];
        for (std::size_t i = 0; i < list->elements; ++i) handle_entry(*list->element[i]);
      }
      set_progress(true);
    }
  }
}

void RedisStreamBus::Impl::run(const std::stop_token& stop) {
  static constexpr std::string_view kWhere = "redis stream bus reader thread";
  Backoff backoff;
  Link link(config_, connections_, client_name(config_.key_prefix, "reader"));
  while (!stop.stop_requested()) {
    // Redis being unavailable is handled inside; anything else abandons this
    // connection and the entry in hand (its id is taken before it is
    // published), and the reader connects and syncs again.
    const bool ok = sessionstream::detail::contain_noted(faults_, notes_, kWhere, [&] {
      try {
        link.reset();
        Connection& connection = link.get();
        if (ever_connected_) reconnects_.fetch_add(1, std::memory_order_relaxed);
        ever_connected_ = true;
        sync(connection);
        bool was_down = false;
        {
          std::lock_guard lock(status_mutex_);
          was_down = !down_reason_.empty();
          down_reason_.clear();
        }
        if (was_down) {
          notes_.rearm("redis.");
          notes_.always("info", "redis.up", "redis stream bus: " + endpoint_ + " reachable again");
        }
        set_progress(true);
        backoff.reset();
        read_loop(connection, stop);
      } catch (const Unavailable& e) {
        record_error(e.what());
        {
          std::lock_guard lock(status_mutex_);
          down_reason_ =
              std::string{"cannot read the stream from Redis at "} + endpoint_ + ": " + e.what();
        }
        notes_.once("error", "redis.down",
                    std::string{"redis stream bus: "} + e.what() + "; retrying with backoff");
        set_progress(false);
      }
      link.reset();
      std::unique_lock lock(progress_mutex_);
      progress_cv_.wait_for(lock, stop, backoff.next(), [] { return false; });
    });
    if (!ok) {
      (void)faults_.contain(kWhere, [&] {
        link.reset();
        set_progress(false);
      });
      sessionstream::detail::pause_after_fault(stop);
    }
  }
  (void)faults_.contain(kWhere, [&] { set_progress(false); });
}

std::string RedisStreamBus::Impl::publish(std::string_view channel, std::string data,
                                          std::string type, bool json) {
  if (type.empty()) type = "message";
  hub_.validate_event(channel, data, type, json);
  std::lock_guard lock(publish_mutex_);
  // Under the lock: stop() closes the connection under it.
  if (!running_.load()) {
    throw Unavailable("the Redis stream bus for " + endpoint_ + " is not running; start() it");
  }
  std::uint64_t epoch = cluster_epoch_.load();
  if (epoch == 0) {
    std::string reason;
    {
      std::lock_guard status(status_mutex_);
      reason = down_reason_;
    }
    throw Unavailable("the Redis stream bus has not reached " + endpoint_ +
                      " yet (cluster epoch unknown)" + (reason.empty() ? "" : ": " + reason));
  }
  const std::string max_len = std::to_string(config_.max_len);
  const std::string_view json_flag = json ? "1" : "0";
  bool reconnected = false;
  bool epoch_retried = false;
  while (true) {
    Reply reply;
    try {
      const bool had_connection = publisher_.open();
      try {
        Connection& connection = publisher_.get();
        const std::string epoch_hex = hex(epoch);
        reply = run_script(
            connection, kPublishScript, publish_sha_,
            {epoch_key_, seq_key_, events_key_, epoch_hex, max_len, channel, type, data, json_flag},
            3);
        if (reply->type == REDIS_REPLY_ERROR && text(*reply).find("EPOCH") != std::string::npos &&
            !epoch_retried) {
          // Another node started a new epoch (Redis lost its data); this
          // node's reader adopts it too.
          epoch_retried = true;
          epoch = read_or_create_epoch(connection).epoch;
          continue;
        }
      } catch (const Unavailable&) {
        publisher_.reset();
        // A connection kept from an earlier call may have gone stale (Redis
        // restarted): one fresh attempt.
        if (!had_connection || reconnected) throw;
        reconnected = true;
        continue;
      }
    } catch (const Unavailable& e) {
      record_error(e.what());
      throw Unavailable("cannot publish to Redis at " + endpoint_ + ": " + e.what());
    }
    if (reply->type == REDIS_REPLY_INTEGER && reply->integer > 0) {
      published_.fetch_add(1, std::memory_order_relaxed);
      return EventId{epoch, static_cast<std::uint64_t>(reply->integer)}.to_string();
    }
    const std::string what = "Redis at " + endpoint_ + " refused the publish on " + events_key_ +
                             ": " + utf8_excerpt(text(*reply), 200);
    record_error(what);
    throw Unavailable(what);
  }
}

std::optional<std::vector<EventPtr>> RedisStreamBus::Impl::replay_on(Connection& connection,
                                                                     std::string_view channel,
                                                                     std::uint64_t after_seq,
                                                                     std::uint64_t through_seq,
                                                                     std::uint64_t epoch) {
  const std::string through = std::to_string(through_seq) + "-0";
  const std::string batch = std::to_string(kReplayBatch);
  std::vector<EventPtr> out;
  std::uint64_t from = after_seq + 1;
  while (from <= through_seq) {
    const std::string start = std::to_string(from) + "-0";
    // With each batch: the stream's first entry (does it still reach back to
    // `from`? trimming only ever moves it forward, so asking after the batch
    // is safe) and the epoch (do these entries belong to the client's?).
    connection.append({"XRANGE", events_key_, start, through, "COUNT", batch});
    connection.append({"XRANGE", events_key_, "-", "+", "COUNT", "1"});
    connection.append({"GET", epoch_key_});
    const Reply entries = connection.read_reply();
    const Reply first = connection.read_reply();
    const Reply current = connection.read_reply();
    if (entries->type != REDIS_REPLY_ARRAY || first->type != REDIS_REPLY_ARRAY) {
      throw Unavailable("Redis at " + endpoint_ + " refused XRANGE on " + events_key_ + ": " +
                        std::string{text(*entries)});
    }
    if (current->type == REDIS_REPLY_NIL || parse_epoch(*current) != epoch) return std::nullopt;
    if (first->elements == 0) return std::nullopt;
    const redisReply* head = first->element[0];
    const auto first_id =
        head->type == REDIS_REPLY_ARRAY && head->elements == 2 && is_string(head->element[0])
            ? parse_entry_id(text(*head->element[0]))
            : std::nullopt;
    if (!first_id || first_id->major > from) return std::nullopt;
    std::uint64_t last_major = from;
    for (std::size_t i = 0; i < entries->elements; ++i) {
      const redisReply* entry = entries->element[i];
      if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 ||
          !is_string(entry->element[0])) {
        continue;
      }
      const auto id = parse_entry_id(text(*entry->element[0]));
      if (!id) continue;
      last_major = std::max(last_major, id->major);
      if (id->minor != 0 || id->major <= after_seq || id->major > through_seq) continue;
      // Entries the reader skipped are skipped here too (counted there).
      auto decoded = decode(entry->element[1], hub_, true);
      auto* event = std::get_if<Decoded>(&decoded);
      if (event == nullptr || event->channel != channel) continue;
      out.push_back(std::make_shared<const Event>(std::move(event->channel),
                                                  EventId{epoch, id->major}, std::move(event->type),
                                                  std::move(event->data), event->json));
    }
    if (entries->elements < kReplayBatch) break;
    from = last_major + 1;
  }
  return out;
}

std::optional<std::vector<EventPtr>> RedisStreamBus::Impl::replay(std::string_view channel,
                                                                  std::uint64_t after_seq,
                                                                  std::uint64_t through_seq) {
  replays_.fetch_add(1, std::memory_order_relaxed);
  std::uint64_t epoch = 0;
  {
    std::lock_guard lock(progress_mutex_);
    epoch = adopted_epoch_;
  }
  const auto gap = [this] {
    replay_gaps_.fetch_add(1, std::memory_order_relaxed);
    return std::nullopt;
  };
  if (!running_.load() || epoch == 0 || epoch != hub_.epoch()) return gap();
  if (through_seq <= after_seq) return std::vector<EventPtr>{};
  std::lock_guard lock(replay_mutex_);
  for (int attempt = 0; attempt < 2; ++attempt) {
    const bool had_connection = replayer_.open();
    try {
      auto events = replay_on(replayer_.get(), channel, after_seq, through_seq, epoch);
      if (!running_.load()) replayer_.reset();
      if (!events) return gap();
      replayed_events_.fetch_add(events->size(), std::memory_order_relaxed);
      return events;
    } catch (const Unavailable& e) {
      replayer_.reset();
      if (had_connection && attempt == 0) continue;  // stale connection: one fresh try
      record_error(e.what());
      notes_.once("error", "redis.replay",
                  std::string{"redis stream bus: replay failed, resumes get a gap: "} + e.what());
      return gap();
    }
  }
  return gap();
}

bool RedisStreamBus::Impl::catch_up(std::uint64_t epoch, std::uint64_t seq) {
  std::unique_lock lock(progress_mutex_);
  const auto reached = [&] { return adopted_epoch_ == epoch && read_through_ >= seq; };
  if (adopted_epoch_ != epoch) return false;
  progress_cv_.wait_for(lock, config_.catch_up_timeout,
                        [&] { return stopping_ || adopted_epoch_ != epoch || reached(); });
  return reached();
}

RedisStreamBusHealth RedisStreamBus::Impl::health() const {
  RedisStreamBusHealth h;
  h.running = running_.load();
  {
    std::lock_guard lock(progress_mutex_);
    h.connected = connected_ && adopted_epoch_ != 0;
    h.head = read_through_;
  }
  const std::uint64_t epoch = cluster_epoch_.load();
  if (epoch != 0) h.epoch = hex(epoch);
  h.published = published_.load();
  h.received = received_.load();
  h.duplicates = duplicates_.load();
  h.lost = lost_.load();
  for (std::size_t i = 0; i < kBusSkipKinds; ++i) h.skipped[i] = skipped_[i].load();
  h.reconnects = reconnects_.load();
  h.errors = errors_.load();
  std::string down;
  {
    std::lock_guard lock(status_mutex_);
    h.last_error = last_error_;
    down = down_reason_;
  }
  h.replays = replays_.load();
  h.replayed_events = replayed_events_.load();
  h.replay_gaps = replay_gaps_.load();
  h.stream_key = events_key_;
  h.max_len = config_.max_len;
  h.endpoint = endpoint_;
  h.connections = connections_.load();
  h.log_notes_dropped = notes_.dropped();
  h.log_notes_suppressed = notes_.suppressed();
  h.thread_faults = faults_.report();
  if (!h.running) {
    h.status = "stopped";
    h.reason = "the Redis stream bus is not running";
  } else if (!h.connected) {
    h.status = "degraded";
    h.reason = down.empty() ? "connecting to Redis at " + endpoint_ : down;
  } else {
    h.status = "healthy";
  }
  sessionstream::detail::degrade_on_fault(h.thread_faults, h.status, h.reason);
  return h;
}

RedisStreamBus::RedisStreamBus(Hub& hub, RedisStreamBusConfig config) {
  validate(hub, config);
  impl_ = std::make_shared<Impl>(hub, std::move(config));
}

RedisStreamBus::~RedisStreamBus() {
  stop();
}

void RedisStreamBus::start() {
  impl_->start(impl_);
}

void RedisStreamBus::stop() {
  impl_->stop();
}

bool RedisStreamBus::running() const {
  return impl_->running();
}

bool RedisStreamBus::wait_ready(std::chrono::milliseconds timeout) const {
  return impl_->wait_ready(timeout);
}

std::string RedisStreamBus::publish(std::string_view channel, std::string data, std::string type,
                                    bool data_is_json) {
  return impl_->publish(channel, std::move(data), std::move(type), data_is_json);
}

RedisStreamBusHealth RedisStreamBus::health() const {
  return impl_->health();
}

std::vector<LogNote> RedisStreamBus::take_log_notes() {
  return impl_->take_log_notes();
}

const std::string& RedisStreamBus::stream_key() const noexcept {
  return impl_->stream_key();
}

}  // namespace sessionstream::redis
