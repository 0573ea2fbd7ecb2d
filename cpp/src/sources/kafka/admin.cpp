#include <algorithm>
#include <memory>
#include <mutex>

#include "sessionstream/sources/kafka/admin.hpp"
#include "sources/kafka/rd.hpp"

namespace sessionstream::kafka {

namespace {

struct QueueDeleter {
  void operator()(rd_kafka_queue_t* q) const noexcept { rd_kafka_queue_destroy(q); }
};
struct EventDeleter {
  void operator()(rd_kafka_event_t* e) const noexcept { rd_kafka_event_destroy(e); }
};
struct OptionsDeleter {
  void operator()(rd_kafka_AdminOptions_t* o) const noexcept { rd_kafka_AdminOptions_destroy(o); }
};
struct GroupListDeleter {
  void operator()(const rd_kafka_group_list* l) const noexcept { rd_kafka_group_list_destroy(l); }
};

int millis(std::chrono::milliseconds timeout) {
  return static_cast<int>(std::max<std::int64_t>(1, timeout.count()));
}

GroupInfo to_info(const rd_kafka_group_info& g) {
  GroupInfo info;
  info.group = g.group ? g.group : "";
  info.state = g.state ? g.state : "";
  info.protocol_type = g.protocol_type ? g.protocol_type : "";
  for (int i = 0; i < g.member_cnt; ++i) {
    info.members.emplace_back(g.members[i].member_id ? g.members[i].member_id : "");
  }
  if (g.err != RD_KAFKA_RESP_ERR_NO_ERROR) info.error = rd_kafka_err2name(g.err);
  return info;
}

}  // namespace

struct KafkaAdmin::Impl {
  std::mutex mutex;
  detail::NoteLog notes;
  detail::BrokerState state;
  std::unique_ptr<detail::ClientEvents> events;
  std::unique_ptr<RdKafka::Producer> handle;

  explicit Impl(const Properties& properties) {
    // A producer handle serves admin requests; it never produces here.
    // Consumer-only properties would only draw warnings on a producer handle.
    Properties props =
        merged({{"client.id", "sessionstream-admin"}}, without_consumer_only(properties));
    auto conf = detail::make_conf(props);
    events = std::make_unique<detail::ClientEvents>(notes, state, "kafka admin");
    detail::set_callback(*conf, "event_cb", events.get());
    std::string errstr;
    handle.reset(RdKafka::Producer::create(conf.get(), errstr));
    if (!handle) throw KafkaError("cannot create the Kafka admin client: " + errstr);
  }

  ~Impl() {
    if (handle) handle->flush(0);
  }

  // Runs one admin request and waits for its result event.
  template <typename Call>
  std::unique_ptr<rd_kafka_event_t, EventDeleter> request(rd_kafka_admin_op_t op,
                                                          std::chrono::milliseconds timeout,
                                                          Call&& call) {
    rd_kafka_t* rk = handle->c_ptr();
    std::unique_ptr<rd_kafka_queue_t, QueueDeleter> queue{rd_kafka_queue_new(rk)};
    std::unique_ptr<rd_kafka_AdminOptions_t, OptionsDeleter> options{
        rd_kafka_AdminOptions_new(rk, op)};
    char errstr[256];
    rd_kafka_AdminOptions_set_request_timeout(options.get(), millis(timeout), errstr,
                                              sizeof errstr);
    call(rk, options.get(), queue.get());
    std::unique_ptr<rd_kafka_event_t, EventDeleter> event{
        rd_kafka_queue_poll(queue.get(), millis(timeout) + 1000)};
    if (!event) throw KafkaError("Kafka admin request timed out", "_TIMED_OUT");
    if (rd_kafka_event_error(event.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw KafkaError(
          std::string{"Kafka admin request failed: "} + rd_kafka_event_error_string(event.get()),
          rd_kafka_err2name(rd_kafka_event_error(event.get())));
    }
    return event;
  }
};

KafkaAdmin::KafkaAdmin(const Properties& properties) : impl_(std::make_unique<Impl>(properties)) {}
KafkaAdmin::~KafkaAdmin() = default;

std::vector<GroupInfo> KafkaAdmin::list_groups(std::chrono::milliseconds timeout) {
  std::lock_guard lock(impl_->mutex);
  const rd_kafka_group_list* raw = nullptr;
  const auto err = rd_kafka_list_groups(impl_->handle->c_ptr(), nullptr, &raw, millis(timeout));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__PARTIAL) {
    throw KafkaError(std::string{"cannot list consumer groups: "} + rd_kafka_err2str(err),
                     rd_kafka_err2name(err));
  }
  std::unique_ptr<const rd_kafka_group_list, GroupListDeleter> list{raw};
  std::vector<GroupInfo> out;
  for (int i = 0; i < list->group_cnt; ++i) out.push_back(to_info(list->groups[i]));
  return out;
}

std::optional<GroupInfo> KafkaAdmin::describe_group(const std::string& group,
                                                    std::chrono::milliseconds timeout) {
  std::lock_guard lock(impl_->mutex);
  const rd_kafka_group_list* raw = nullptr;
  const auto err =
      rd_kafka_list_groups(impl_->handle->c_ptr(), group.c_str(), &raw, millis(timeout));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw KafkaError("cannot describe consumer group '" + group + "': " + rd_kafka_err2str(err),
                     rd_kafka_err2name(err));
  }
  std::unique_ptr<const rd_kafka_group_list, GroupListDeleter> list{raw};
  for (int i = 0; i < list->group_cnt; ++i) {
    GroupInfo info = to_info(list->groups[i]);
    if (info.group != group) continue;
    if (info.state == "Dead" || info.error == "GROUP_ID_NOT_FOUND") return std::nullopt;
    return info;
  }
  return std::nullopt;
}

std::vector<std::pair<std::string, std::string>> KafkaAdmin::delete_groups(
    const std::vector<std::string>& groups, std::chrono::milliseconds timeout) {
  std::vector<std::pair<std::string, std::string>> out;
  if (groups.empty()) return out;
  std::lock_guard lock(impl_->mutex);
  std::vector<rd_kafka_DeleteGroup_t*> requests;
  for (const auto& group : groups) requests.push_back(rd_kafka_DeleteGroup_new(group.c_str()));
  std::unique_ptr<rd_kafka_event_t, EventDeleter> event;
  try {
    event = impl_->request(
        RD_KAFKA_ADMIN_OP_DELETEGROUPS, timeout,
        [&](rd_kafka_t* rk, rd_kafka_AdminOptions_t* options, rd_kafka_queue_t* queue) {
          rd_kafka_DeleteGroups(rk, requests.data(), requests.size(), options, queue);
        });
  } catch (...) {
    rd_kafka_DeleteGroup_destroy_array(requests.data(), requests.size());
    throw;
  }
  rd_kafka_DeleteGroup_destroy_array(requests.data(), requests.size());
  const rd_kafka_DeleteGroups_result_t* result = rd_kafka_event_DeleteGroups_result(event.get());
  std::size_t count = 0;
  const rd_kafka_group_result_t** results = rd_kafka_DeleteGroups_result_groups(result, &count);
  for (std::size_t i = 0; i < count; ++i) {
    const rd_kafka_error_t* error = rd_kafka_group_result_error(results[i]);
    out.emplace_back(rd_kafka_group_result_name(results[i]),
                     error ? rd_kafka_error_name(error) : "");
  }
  return out;
}

void KafkaAdmin::create_topic(const std::string& topic, int partitions,
                              std::chrono::milliseconds timeout) {
  std::lock_guard lock(impl_->mutex);
  char errstr[512];
  rd_kafka_NewTopic_t* request =
      rd_kafka_NewTopic_new(topic.c_str(), partitions, -1, errstr, sizeof errstr);
  if (request == nullptr) throw InvalidArgument("topic '" + topic + "': " + errstr);
  std::unique_ptr<rd_kafka_event_t, EventDeleter> event;
  try {
    event = impl_->request(
        RD_KAFKA_ADMIN_OP_CREATETOPICS, timeout,
        [&](rd_kafka_t* rk, rd_kafka_AdminOptions_t* options, rd_kafka_queue_t* queue) {
          rd_kafka_CreateTopics(rk, &request, 1, options, queue);
        });
  } catch (...) {
    rd_kafka_NewTopic_destroy(request);
    throw;
  }
  rd_kafka_NewTopic_destroy(request);
  const rd_kafka_CreateTopics_result_t* result = rd_kafka_event_CreateTopics_result(event.get());
  std::size_t count = 0;
  const rd_kafka_topic_result_t** topics = rd_kafka_CreateTopics_result_topics(result, &count);
  for (std::size_t i = 0; i < count; ++i) {
    const auto err = rd_kafka_topic_result_error(topics[i]);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
      continue;
    const char* text = rd_kafka_topic_result_error_string(topics[i]);
    throw KafkaError(
        "cannot create topic '" + topic + "': " + (text ? text : rd_kafka_err2str(err)),
        rd_kafka_err2name(err));
  }
}

std::optional<int> KafkaAdmin::partitions(const std::string& topic,
                                          std::chrono::milliseconds timeout) {
  std::lock_guard lock(impl_->mutex);
  RdKafka::Metadata* raw = nullptr;
  const auto code = impl_->handle->metadata(true, nullptr, &raw, millis(timeout));
  std::unique_ptr<RdKafka::Metadata> metadata{raw};
  if (code != RdKafka::ERR_NO_ERROR) {
    throw KafkaError("cannot read cluster metadata: " + detail::error_text(code),
                     detail::error_name(code));
  }
  for (const RdKafka::TopicMetadata* t : *metadata->topics()) {
    if (t->topic() == topic && t->err() == RdKafka::ERR_NO_ERROR) {
      return static_cast<int>(t->partitions()->size());
    }
  }
  return std::nullopt;
}

bool KafkaAdmin::reachable(std::chrono::milliseconds timeout) {
  std::lock_guard lock(impl_->mutex);
  RdKafka::Metadata* raw = nullptr;
  const auto code = impl_->handle->metadata(false, nullptr, &raw, millis(timeout));
  std::unique_ptr<RdKafka::Metadata> metadata{raw};
  return code == RdKafka::ERR_NO_ERROR;
}

}  // namespace sessionstream::kafka
