#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sessionstream/sources/kafka/config.hpp"

namespace sessionstream::kafka {

struct GroupInfo {
  std::string group;
  std::string state;                 // "Stable", "Empty", "Dead", "PreparingRebalance", ...
  std::string protocol_type;         // "consumer" for consumer groups
  std::vector<std::string> members;  // member ids
  std::string error;                 // empty unless the broker reported one for this group
};

// Cluster administration the pool and the tests need: consumer groups
// (list, describe, delete), topic creation and a reachability probe. Each call
// blocks for at most its timeout. Thread-safe (calls are serialised).
class KafkaAdmin {
 public:
  // properties: bootstrap.servers and security settings; consumer-only
  // properties are accepted and ignored.
  explicit KafkaAdmin(const Properties& properties);
  ~KafkaAdmin();
  KafkaAdmin(const KafkaAdmin&) = delete;
  KafkaAdmin& operator=(const KafkaAdmin&) = delete;

  // Throws KafkaError when the broker cannot be asked.
  [[nodiscard]] std::vector<GroupInfo> list_groups(std::chrono::milliseconds timeout);
  // nullopt when the broker does not know the group (or reports it Dead).
  [[nodiscard]] std::optional<GroupInfo> describe_group(const std::string& group,
                                                        std::chrono::milliseconds timeout);
  // Per group, an empty string on success or the broker's error name.
  [[nodiscard]] std::vector<std::pair<std::string, std::string>> delete_groups(
      const std::vector<std::string>& groups, std::chrono::milliseconds timeout);
  // Creates the topic unless it exists. Throws KafkaError on other failures.
  void create_topic(const std::string& topic, int partitions, std::chrono::milliseconds timeout);
  // Partition count of a topic, nullopt when it does not exist.
  [[nodiscard]] std::optional<int> partitions(const std::string& topic,
                                              std::chrono::milliseconds timeout);
  // A metadata round trip succeeded within the timeout.
  [[nodiscard]] bool reachable(std::chrono::milliseconds timeout);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sessionstream::kafka
