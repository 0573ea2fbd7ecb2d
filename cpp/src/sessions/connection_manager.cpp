#include "sessionstream/sessions/connection_manager.hpp"

#include <algorithm>
#include <iterator>
#include <set>
#include <utility>

#include "sessionstream/common/errors.hpp"
#include "sessionstream/common/utf8.hpp"
#include "sessionstream/sessions/session_id.hpp"

namespace sessionstream {

ConnectionPolicy parse_connection_policy(std::string_view text) {
  if (text == "all") return ConnectionPolicy::all;
  if (text == "latest") return ConnectionPolicy::latest;
  if (text == "swap_after_processing") return ConnectionPolicy::swap_after_processing;
  if (text == "failover") return ConnectionPolicy::failover;
  throw InvalidArgument("connection policy '" + utf8_excerpt(text, 64) +
                        "' is invalid: use all, latest, swap_after_processing or failover");
}

const char* to_string(ConnectionPolicy policy) noexcept {
  switch (policy) {
    case ConnectionPolicy::all:
      return "all";
    case ConnectionPolicy::latest:
      return "latest";
    case ConnectionPolicy::swap_after_processing:
      return "swap_after_processing";
    case ConnectionPolicy::failover:
      return "failover";
  }
  return "unknown";
}

namespace {
void authorize_channels(const std::vector<std::string>& channels, std::string_view session_id,
                        std::size_t max_channel_name) {
  for (const auto& channel : channels) {
    Hub::validate_channel_name(channel, max_channel_name);
    if (is_foreign_private_channel(channel, session_id)) {
      throw InvalidArgument("channel '" + channel +
                            "' is another session's private channel; a session may only open "
                            "its own session:<id> channel");
    }
  }
}
}  // namespace

Connection::Connection(ConnectionManager& manager, ConnectionInfo info, MailboxPtr mailbox)
    : manager_(manager), info_(std::move(info)), mailbox_(std::move(mailbox)) {}

Connection::~Connection() {
  close(close_reason::client_gone);
}

ResumeOutcome Connection::subscribe(const std::vector<std::string>& channels,
                                    std::optional<std::string_view> last_event_id) {
  if (closed_.load()) throw Closed("connection " + std::to_string(id()) + " is closed");
  authorize_channels(channels, info_.session_id, manager_.hub().config().max_channel_name);
  if (manager_.defer_subscribe(id(), channels)) return ResumeOutcome::live;
  return manager_.hub().subscribe(mailbox_, channels, last_event_id);
}

void Connection::unsubscribe(std::string_view channel) {
  if (manager_.defer_unsubscribe(id(), channel)) return;
  manager_.hub().unsubscribe(mailbox_, channel);
}

std::vector<std::string> Connection::channels() const {
  if (auto deferred = manager_.deferred_channels(id())) return std::move(*deferred);
  return manager_.hub().channels_of(*mailbox_);
}

void Connection::close(std::string_view reason) {
  if (closed_.exchange(true)) return;
  mailbox_->close(reason);
  // The manager or hub may have closed the mailbox first (replaced,
  // shutdown, slow_consumer); that first reason is the one to report.
  const std::string first_reason = mailbox_->closed_reason();
  manager_.hub().detach(mailbox_);
  manager_.release(id(), first_reason);
}

ConnectionManager::ConnectionManager(Hub& hub, ConnectionLimits limits,
                                     ConnectionPolicy default_policy,
                                     std::shared_ptr<LifecycleQueue> lifecycle)
    : hub_(hub),
      limits_(limits),
      default_policy_(default_policy),
      lifecycle_(lifecycle ? std::move(lifecycle) : hub.lifecycle()) {
  if (limits_.max_connections == 0 || limits_.max_per_ip == 0 || limits_.max_per_session == 0) {
    throw InvalidArgument("connection limits must be positive, got max_connections=" +
                          std::to_string(limits_.max_connections) +
                          " max_per_ip=" + std::to_string(limits_.max_per_ip) +
                          " max_per_session=" + std::to_string(limits_.max_per_session));
  }
}

ConnectionManager::~ConnectionManager() = default;

void ConnectionManager::post(LifecycleEvent event) {
  lifecycle_->push(std::move(event));
}

ConnectionPtr ConnectionManager::open(ConnectionRequest request,
                                      std::shared_ptr<Notifier> notifier) {
  validate_session_id(request.session_id);
  authorize_channels(request.channels, request.session_id, hub_.config().max_channel_name);
  std::vector<std::string> channels = std::move(request.channels);
  channels.push_back(private_channel(request.session_id));

  MailboxPtr mailbox;
  ConnectionInfo info;
  bool failover = false;
  {
    std::lock_guard lock(mutex_);
    if (shut_down_) throw Closed("server is shutting down; no new connections");
    const auto reject = [&](LimitKind kind, std::size_t limit) {
      ++rejections_[static_cast<std::size_t>(kind)];
      post({LifecycleKind::rejected, 0, request.session_id, 0, to_string(kind)});
      throw LimitExceeded(kind, limit);
    };
    if (connections_.size() >= limits_.max_connections) {
      reject(LimitKind::server_full, limits_.max_connections);
    }
    if (!request.ip.empty()) {
      const auto ip = per_ip_.find(request.ip);
      if (ip != per_ip_.end() && ip->second >= limits_.max_per_ip) {
        reject(LimitKind::per_ip, limits_.max_per_ip);
      }
    }
    const auto existing = sessions_.find(request.session_id);
    if (existing != sessions_.end()) {
      const ConnectionPolicy policy = request.policy.value_or(default_policy_);
      // Connections this one is about to replace, or that are already closed
      // and only wait for their owner, do not hold a place: a reconnect under
      // latest is never refused because of the tab it replaces.
      const auto staying = std::count_if(
          existing->second.connections.begin(), existing->second.connections.end(),
          [&](std::uint64_t id) {
            const Entry& entry = connections_.at(id);
            if (entry.mailbox->closed()) return false;
            if (policy == ConnectionPolicy::all || policy == ConnectionPolicy::failover ||
                entry.info.group != request.group) {
              return true;
            }
            return policy == ConnectionPolicy::swap_after_processing && entry.info.processing;
          });
      if (static_cast<std::size_t>(staying) >= limits_.max_per_session) {
        reject(LimitKind::per_session, limits_.max_per_session);
      }
    }

    mailbox = hub_.make_mailbox(request.mailbox, std::move(notifier));
    info = ConnectionInfo{mailbox->id(), request.session_id,
                          request.ip,    request.group,
                          false,         std::chrono::system_clock::now()};
    const ConnectionPolicy policy = request.policy.value_or(default_policy_);
    failover = policy == ConnectionPolicy::failover;
    const std::uint64_t active = failover && existing != sessions_.end()
                                     ? active_of_locked(request.session_id, request.group)
                                     : 0;
    info.standby = active != 0;

    // Registered before anything else can happen to the session: the
    // newcomer is usable whatever the state of the connections it replaces.
    Entry entry{info, mailbox, {}};
    if (info.standby) entry.deferred_channels = channels;
    connections_.emplace(info.id, std::move(entry));
    auto [session, created] = sessions_.try_emplace(request.session_id);
    if (created) session->second.created = info.connected_at;
    session->second.connections.push_back(info.id);
    if (!request.ip.empty()) ++per_ip_[request.ip];
    ++lifetime_;
    post({LifecycleKind::connected, info.id, request.session_id, 0, {}});
    if (info.standby) {
      post({LifecycleKind::standby, info.id, request.session_id, active, {}});
      mailbox->deliver_control(
          Event::control("standby", "\"active_connection_id\":" + std::to_string(active)));
    } else {
      apply_policy_locked(request.session_id, info.id, policy);
    }
  }
  ConnectionPtr connection;
  try {
    connection = std::make_shared<Connection>(*this, info, mailbox);
  } catch (...) {
    release(info.id, close_reason::client_gone);
    throw;
  }
  // A standby receives nothing until promoted; its channels wait in its entry.
  if (info.standby) return connection;
  if (failover) {
    // Where a standby resumes if this connection closes before taking
    // anything with an id. The head read before attaching may precede the
    // attachment: the standby then also gets events this one never had, but
    // never one twice.
    mailbox->set_last_taken_id(request.last_event_id.value_or(hub_.head_id()));
  }
  // Outside the manager's lock: a resume may wait on a replay source (a Kafka
  // seek), which must not hold up other sessions' opens and closes. If it
  // throws, the connection's destructor releases the slot.
  connection->set_resume_outcome(hub_.subscribe(mailbox, channels, request.last_event_id));
  return connection;
}

void ConnectionManager::close_entry_locked(const Entry& entry, std::string_view reason) {
  entry.mailbox->close(reason);
  hub_.detach(entry.mailbox);
}

std::uint64_t ConnectionManager::active_of_locked(const std::string& session_id,
                                                  const std::string& group) const {
  const auto session = sessions_.find(session_id);
  if (session == sessions_.end()) return 0;
  const auto& ids = session->second.connections;
  for (auto it = ids.rbegin(); it != ids.rend(); ++it) {
    const Entry& entry = connections_.at(*it);
    if (entry.info.group != group || entry.info.standby || entry.mailbox->closed()) continue;
    return *it;
  }
  return 0;
}

void ConnectionManager::apply_policy_locked(const std::string& session_id, std::uint64_t newcomer,
                                            ConnectionPolicy policy) {
  if (policy == ConnectionPolicy::all || policy == ConnectionPolicy::failover) return;
  for (const auto other : sessions_.at(session_id).connections) {
    if (other == newcomer) continue;
    const auto& entry = connections_.at(other);
    if (entry.info.group != connections_.at(newcomer).info.group) continue;
    if (entry.mailbox->closed()) continue;
    if (policy == ConnectionPolicy::swap_after_processing && entry.info.processing) {
      pending_swaps_[other] = newcomer;
      continue;
    }
    post({LifecycleKind::replaced, other, session_id, newcomer,
          std::string{close_reason::replaced}});
    close_entry_locked(entry, close_reason::replaced);
  }
}

void ConnectionManager::release(std::uint64_t connection_id, std::string_view reason) {
  std::optional<Promotion> promotion;
  {
    std::lock_guard lock(mutex_);
    const auto it = connections_.find(connection_id);
    if (it == connections_.end()) return;
    const ConnectionInfo info = it->second.info;
    // The owner has stopped taking: what it took last is where its client is.
    const std::string resume_from =
        info.standby ? std::string{} : it->second.mailbox->last_taken_id();
    connections_.erase(it);
    release_locked(info, reason);
    if (!info.standby && !shut_down_) promotion = choose_promotion_locked(info, resume_from);
  }
  if (promotion) promote(std::move(*promotion));
}

std::optional<ConnectionManager::Promotion> ConnectionManager::choose_promotion_locked(
    const ConnectionInfo& closed, const std::string& resume_from) {
  const auto session = sessions_.find(closed.session_id);
  if (session == sessions_.end()) return std::nullopt;
  // Another connection of the group still receives: the standbys keep waiting.
  if (active_of_locked(closed.session_id, closed.group) != 0) return std::nullopt;
  const auto& ids = session->second.connections;
  for (auto id = ids.rbegin(); id != ids.rend(); ++id) {
    Entry& entry = connections_.at(*id);
    if (entry.info.group != closed.group || !entry.info.standby) continue;
    if (entry.mailbox->closed()) continue;  // going away: try the next most recent
    entry.info.standby = false;
    // Where it stands until it takes something itself, so that if it closes
    // before then, the next standby resumes from the same place.
    entry.mailbox->set_last_taken_id(resume_from);
    post({LifecycleKind::promoted, entry.info.id, closed.session_id, closed.id, {}});
    if (entry.mailbox->options().framing == Framing::sse && EventId::parse(resume_from)) {
      // The client's Last-Event-ID becomes the hand-over point at once, so a
      // drop before the first event still resumes exactly.
      entry.mailbox->deliver_control(Event::position(resume_from));
    }
    entry.mailbox->deliver_control(
        Event::control("active", "\"previous_connection_id\":" + std::to_string(closed.id)));
    return Promotion{entry.mailbox, std::exchange(entry.deferred_channels, {}), resume_from};
  }
  return std::nullopt;
}

void ConnectionManager::promote(Promotion promotion) {
  const MailboxPtr& mailbox = promotion.mailbox;
  try {
    std::optional<std::string_view> from;
    if (!promotion.resume_from.empty()) from = promotion.resume_from;
    (void)hub_.subscribe(mailbox, promotion.channels, from);
  } catch (const Error&) {
    // The hub is closing: the promoted connection can never receive.
    mailbox->close(close_reason::shutdown);
  }
  // It may have closed while attaching, its detach running before the
  // attachment: detach again so no channel keeps a closed mailbox.
  if (mailbox->closed()) hub_.detach(mailbox);
}

void ConnectionManager::release_locked(const ConnectionInfo& info, std::string_view reason) {
  if (const auto session = sessions_.find(info.session_id); session != sessions_.end()) {
    auto& ids = session->second.connections;
    ids.erase(std::remove(ids.begin(), ids.end(), info.id), ids.end());
    if (ids.empty()) sessions_.erase(session);
  }
  if (!info.ip.empty()) {
    if (const auto ip = per_ip_.find(info.ip); ip != per_ip_.end() && --ip->second == 0) {
      per_ip_.erase(ip);
    }
  }
  // The busy side went away: its swap is complete. The waiting side went
  // away: nothing is left to swap to.
  if (const auto swap = pending_swaps_.find(info.id); swap != pending_swaps_.end()) {
    post({LifecycleKind::swapped, info.id, info.session_id, swap->second, std::string{reason}});
    pending_swaps_.erase(swap);
  }
  std::erase_if(pending_swaps_, [&](const auto& pair) { return pair.second == info.id; });
  post({LifecycleKind::disconnected, info.id, info.session_id, 0, std::string{reason}});
}

bool ConnectionManager::defer_subscribe(std::uint64_t connection_id,
                                        const std::vector<std::string>& channels) {
  std::lock_guard lock(mutex_);
  const auto it = connections_.find(connection_id);
  if (it == connections_.end() || !it->second.info.standby) return false;
  auto& deferred = it->second.deferred_channels;
  for (const auto& channel : channels) {
    if (std::find(deferred.begin(), deferred.end(), channel) == deferred.end()) {
      deferred.push_back(channel);
    }
  }
  return true;
}

bool ConnectionManager::defer_unsubscribe(std::uint64_t connection_id, std::string_view channel) {
  std::lock_guard lock(mutex_);
  const auto it = connections_.find(connection_id);
  if (it == connections_.end() || !it->second.info.standby) return false;
  std::erase(it->second.deferred_channels, channel);
  return true;
}

std::optional<std::vector<std::string>> ConnectionManager::deferred_channels(
    std::uint64_t connection_id) const {
  std::lock_guard lock(mutex_);
  const auto it = connections_.find(connection_id);
  if (it == connections_.end() || !it->second.info.standby) return std::nullopt;
  return it->second.deferred_channels;
}

void ConnectionManager::mark_processing(std::uint64_t connection_id) {
  std::lock_guard lock(mutex_);
  const auto it = connections_.find(connection_id);
  if (it == connections_.end()) {
    throw InvalidArgument("connection " + std::to_string(connection_id) + " is not open");
  }
  it->second.info.processing = true;
}

void ConnectionManager::unmark_processing(std::uint64_t connection_id) {
  std::lock_guard lock(mutex_);
  const auto it = connections_.find(connection_id);
  if (it == connections_.end()) return;  // closed while processing: nothing to undo
  it->second.info.processing = false;
  const auto swap = pending_swaps_.find(connection_id);
  if (swap == pending_swaps_.end()) return;
  post({LifecycleKind::swapped, connection_id, it->second.info.session_id, swap->second,
        std::string{close_reason::replaced}});
  pending_swaps_.erase(swap);
  close_entry_locked(it->second, close_reason::replaced);
}

bool ConnectionManager::is_processing(std::uint64_t connection_id) const {
  std::lock_guard lock(mutex_);
  const auto it = connections_.find(connection_id);
  return it != connections_.end() && it->second.info.processing;
}

EventPtr ConnectionManager::send_personal(std::string_view session_id, std::string type,
                                          std::string data, bool data_is_json) {
  validate_session_id(session_id);
  return hub_.publish(private_channel(session_id), std::move(data), std::move(type), data_is_json);
}

std::size_t ConnectionManager::disconnect_channel(std::string_view session_id,
                                                  std::string_view channel) {
  // A name no subscribe could have used is an error, not "0 connections had it".
  Hub::validate_channel_name(channel, hub_.config().max_channel_name);
  std::lock_guard lock(mutex_);
  const auto session = sessions_.find(session_id);
  if (session == sessions_.end()) return 0;
  std::size_t count = 0;
  for (const auto id : session->second.connections) {
    auto& entry = connections_.at(id);
    if (entry.info.standby) {
      if (std::erase(entry.deferred_channels, channel) > 0) ++count;
      continue;
    }
    const auto& mailbox = entry.mailbox;
    const auto channels = hub_.channels_of(*mailbox);
    if (std::find(channels.begin(), channels.end(), channel) == channels.end()) continue;
    hub_.unsubscribe(mailbox, channel);
    ++count;
  }
  return count;
}

std::size_t ConnectionManager::close_session(std::string_view session_id, std::string_view reason) {
  std::lock_guard lock(mutex_);
  const auto session = sessions_.find(session_id);
  if (session == sessions_.end()) return 0;
  std::size_t count = 0;
  for (const auto id : session->second.connections) {
    const auto& entry = connections_.at(id);
    if (entry.mailbox->closed()) continue;
    close_entry_locked(entry, reason);
    ++count;
  }
  return count;
}

bool ConnectionManager::close_connection(std::string_view session_id, std::uint64_t connection_id,
                                         std::string_view reason) {
  std::lock_guard lock(mutex_);
  const auto found = connections_.find(connection_id);
  if (found == connections_.end() || found->second.info.session_id != session_id) return false;
  if (found->second.mailbox->closed()) return false;
  close_entry_locked(found->second, reason);
  return true;
}

ConnectionMetrics ConnectionManager::metrics() const {
  ConnectionMetrics m;
  std::lock_guard lock(mutex_);
  m.active_connections = connections_.size();
  // A session is erased with its last connection, so every entry counts.
  m.unique_browser_sessions = sessions_.size();
  m.processing_connections = static_cast<std::size_t>(
      std::count_if(connections_.begin(), connections_.end(),
                    [](const auto& pair) { return pair.second.info.processing; }));
  m.pending_swaps = pending_swaps_.size();
  m.standby_connections = static_cast<std::size_t>(
      std::count_if(connections_.begin(), connections_.end(),
                    [](const auto& pair) { return pair.second.info.standby; }));
  m.opened_lifetime = lifetime_;
  m.errors = errors_.load(std::memory_order_relaxed);
  m.client_messages = client_messages_.load(std::memory_order_relaxed);
  m.uptime_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  m.client_messages_per_connection =
      lifetime_ == 0 ? 0.0
                     : static_cast<double>(m.client_messages) / static_cast<double>(lifetime_);
  m.rejections = rejections_;
  return m;
}

ConnectionManager::SessionSnapshot ConnectionManager::snapshot_locked(
    const std::string& session_id, const SessionState& session) const {
  SessionSnapshot snapshot{session_id, session.created, session.connections.size(), {}, {}};
  for (const auto connection_id : session.connections) {
    const Entry& entry = connections_.at(connection_id);
    if (entry.info.standby) {
      snapshot.deferred.insert(snapshot.deferred.end(), entry.deferred_channels.begin(),
                               entry.deferred_channels.end());
    } else {
      snapshot.attached.push_back(entry.mailbox);
    }
  }
  return snapshot;
}

SessionView ConnectionManager::view_of(SessionSnapshot snapshot) const {
  // Runs without the manager's lock: a mailbox that closed since the snapshot
  // simply reports no channels.
  std::set<std::string> channels(std::make_move_iterator(snapshot.deferred.begin()),
                                 std::make_move_iterator(snapshot.deferred.end()));
  for (const auto& mailbox : snapshot.attached) {
    for (auto& name : hub_.channels_of(*mailbox)) channels.insert(std::move(name));
  }
  return SessionView{std::move(snapshot.session_id),
                     {channels.begin(), channels.end()},
                     snapshot.connections,
                     snapshot.created};
}

std::optional<SessionView> ConnectionManager::session(std::string_view session_id) const {
  std::optional<SessionSnapshot> snapshot;
  {
    std::lock_guard lock(mutex_);
    const auto found = sessions_.find(session_id);
    if (found == sessions_.end() || found->second.connections.empty()) return std::nullopt;
    snapshot = snapshot_locked(found->first, found->second);
  }
  return view_of(std::move(*snapshot));
}

std::vector<SessionView> ConnectionManager::sessions(std::size_t limit,
                                                     std::string_view after) const {
  std::vector<SessionSnapshot> snapshots;
  {
    std::lock_guard lock(mutex_);
    auto it = after.empty() ? sessions_.begin() : sessions_.upper_bound(after);
    for (; it != sessions_.end() && snapshots.size() < limit; ++it) {
      if (it->second.connections.empty()) continue;
      snapshots.push_back(snapshot_locked(it->first, it->second));
    }
  }
  std::vector<SessionView> views;
  views.reserve(snapshots.size());
  for (auto& snapshot : snapshots) views.push_back(view_of(std::move(snapshot)));
  return views;
}

std::size_t ConnectionManager::session_count() const {
  std::lock_guard lock(mutex_);
  // A session is erased with its last connection, so every entry counts.
  return sessions_.size();
}

std::vector<ConnectionInfo> ConnectionManager::connections_of(std::string_view session_id) const {
  std::vector<ConnectionInfo> infos;
  std::lock_guard lock(mutex_);
  const auto session = sessions_.find(session_id);
  if (session == sessions_.end()) return infos;
  for (const auto id : session->second.connections) infos.push_back(connections_.at(id).info);
  return infos;
}

void ConnectionManager::shutdown() {
  std::lock_guard lock(mutex_);
  shut_down_ = true;
  for (const auto& [id, entry] : connections_) close_entry_locked(entry, close_reason::shutdown);
}

}  // namespace sessionstream
