// pybind11 glue for the Kafka / Event Hubs classes; no logic beyond argument
// conversion. Every call that may block releases the GIL.

#include <pybind11/stl.h>

#include "bindings.hpp"
#include "conversions.hpp"

#ifndef SESSIONSTREAM_NO_KAFKA

#include <librdkafka/rdkafkacpp.h>

#include "sessionstream/common/errors.hpp"
#include "sessionstream/common/utf8.hpp"
#include "sessionstream/sources/kafka/admin.hpp"
#include "sessionstream/sources/kafka/config.hpp"
#include "sessionstream/sources/kafka/session_pool.hpp"
#include "sessionstream/sources/kafka/sink.hpp"
#include "sessionstream/sources/kafka/source.hpp"

namespace py = pybind11;

namespace sessionstream::bindings {

namespace {

using namespace std::chrono_literals;
using kafka::Properties;

PyObject* g_kafka_error = nullptr;
PyObject* g_pool_full = nullptr;

std::string property_text(const py::handle& value) {
  if (py::isinstance<py::bool_>(value)) return value.cast<bool>() ? "true" : "false";
  return py::str(value).cast<std::string>();
}

// A dict or an iterable of (name, value) pairs; values become librdkafka text.
Properties to_properties(const py::object& object) {
  Properties out;
  if (object.is_none()) return out;
  if (py::isinstance<py::dict>(object)) {
    for (const auto& [k, v] : object.cast<py::dict>()) {
      out.emplace_back(py::str(k).cast<std::string>(), property_text(v));
    }
    return out;
  }
  for (const auto& item : object) {
    const auto pair = item.cast<py::tuple>();
    if (pair.size() != 2) throw InvalidArgument("properties must be (name, value) pairs");
    out.emplace_back(py::str(pair[0]).cast<std::string>(), property_text(pair[1]));
  }
  return out;
}

py::dict properties_dict(const Properties& properties) {
  py::dict d;
  for (const auto& [k, v] : properties) d[py::str(k)] = v;
  return d;
}

py::dict skip_dict(const kafka::SkipCounts& counts) {
  py::dict d;
  for (std::size_t i = 0; i < kafka::kSkipKinds; ++i) {
    d[kafka::to_string(static_cast<kafka::SkipKind>(i))] = counts[i];
  }
  return d;
}

py::dict replay_dict(const kafka::KafkaReplayHealth& r) {
  py::dict d;
  d["replays"] = r.replays;
  d["replayed_events"] = r.replayed_events;
  d["gaps"] = r.gaps;
  d["index_channels"] = r.index_channels;
  d["index_entries"] = r.index_entries;
  d["index_evicted"] = r.index_evicted;
  return d;
}

py::dict source_health(const kafka::KafkaSourceHealth& h) {
  py::dict d;
  d["status"] = h.status;
  d["reason"] = error_text(h.reason);
  d["running"] = h.running;
  d["ready"] = h.ready;
  d["group_id"] = h.group_id;
  d["topics"] = h.topics;
  d["consumers"] = h.consumers;
  py::list assignments;
  for (const auto& p : h.assignments) {
    py::dict a;
    a["topic"] = p.topic;
    a["partition"] = p.partition;
    a["next_offset"] = p.next_offset;
    a["high_watermark"] = p.high_watermark;
    a["lag"] = p.lag;
    assignments.append(a);
  }
  d["assignments"] = assignments;
  d["received"] = h.received;
  d["published"] = h.published;
  d["duplicates"] = h.duplicates;
  d["skipped"] = skip_dict(h.skipped);
  d["errors"] = h.errors;
  d["last_error"] = error_text(h.last_error);
  d["replay"] = replay_dict(h.replay);
  d["log_notes_dropped"] = h.log_notes_dropped;
  d["log_notes_suppressed"] = h.log_notes_suppressed;
  d["thread_faults"] = thread_faults_dict(h.thread_faults);
  return d;
}

py::dict consumer_dict(const kafka::SessionConsumerStatus& s) {
  py::dict d;
  d["session_id"] = s.session_id;
  d["domain"] = s.domain;
  d["group_id"] = s.group_id;
  d["topic"] = s.topic;
  d["channel"] = s.channel;
  d["created"] = s.created;
  d["last_active"] = s.last_active;
  d["assigned"] = s.assigned;
  d["received"] = s.received;
  d["published"] = s.published;
  return d;
}

py::dict pool_health(const kafka::KafkaSessionPoolHealth& h) {
  py::dict d;
  d["status"] = h.status;
  d["reason"] = error_text(h.reason);
  d["running"] = h.running;
  d["active_sessions"] = h.active_sessions;
  d["total_consumers"] = h.total_consumers;
  d["max_consumers"] = h.max_consumers;
  d["closing"] = h.closing;
  d["opened"] = h.opened;
  d["closed"] = h.closed;
  d["idle_closed"] = h.idle_closed;
  d["groups_deleted"] = h.groups_deleted;
  d["group_delete_errors"] = h.group_delete_errors;
  d["rejected"] = h.rejected;
  d["received"] = h.received;
  d["published"] = h.published;
  d["skipped"] = skip_dict(h.skipped);
  d["errors"] = h.errors;
  d["last_error"] = error_text(h.last_error);
  py::list consumers;
  for (const auto& c : h.consumers) consumers.append(consumer_dict(c));
  d["consumers"] = consumers;
  d["log_notes_dropped"] = h.log_notes_dropped;
  d["log_notes_suppressed"] = h.log_notes_suppressed;
  d["thread_faults"] = thread_faults_dict(h.thread_faults);
  return d;
}

py::dict sink_health(const kafka::KafkaSinkHealth& h) {
  py::dict d;
  d["status"] = h.status;
  d["reason"] = error_text(h.reason);
  d["running"] = h.running;
  d["produced"] = h.produced;
  d["delivered"] = h.delivered;
  d["failed"] = h.failed;
  d["in_flight"] = h.in_flight;
  d["errors"] = h.errors;
  d["last_error"] = error_text(h.last_error);
  d["thread_faults"] = thread_faults_dict(h.thread_faults);
  return d;
}

py::dict group_dict(const kafka::GroupInfo& g) {
  py::dict d;
  d["group"] = g.group;
  d["state"] = g.state;
  d["protocol_type"] = g.protocol_type;
  d["members"] = g.members;
  d["error"] = g.error;
  return d;
}

void register_kafka_errors(py::module_& m) {
  const py::object base = m.attr("SessionStreamError");
  g_kafka_error = PyErr_NewExceptionWithDoc(
      "sessionstream.KafkaError", "A Kafka client call failed; .code is librdkafka's error name.",
      base.ptr(), nullptr);
  if (g_kafka_error == nullptr) throw py::error_already_set();
  m.add_object("KafkaError", py::reinterpret_steal<py::object>(g_kafka_error));
  g_pool_full = PyErr_NewExceptionWithDoc(
      "sessionstream.KafkaPoolFullError",
      "The Kafka session pool is at max_consumers; .limit is the limit.", g_kafka_error, nullptr);
  if (g_pool_full == nullptr) throw py::error_already_set();
  m.add_object("KafkaPoolFullError", py::reinterpret_steal<py::object>(g_pool_full));
  // Registered after the core's translator, so it is tried first; anything
  // that is not a Kafka error propagates to the core's translator.
  py::register_exception_translator([](std::exception_ptr error) {
    try {
      if (error) std::rethrow_exception(error);
    } catch (const kafka::KafkaPoolFull& e) {
      py::object instance = py::handle(g_pool_full)(error_text(e.what()));
      instance.attr("code") = e.code();
      instance.attr("limit") = e.limit();
      PyErr_SetObject(g_pool_full, instance.ptr());
    } catch (const kafka::KafkaError& e) {
      py::object instance = py::handle(g_kafka_error)(error_text(e.what()));
      instance.attr("code") = e.code();
      PyErr_SetObject(g_kafka_error, instance.ptr());
    }
  });
}

}  // namespace

void register_kafka(py::module_& m) {
  m.attr("HAS_KAFKA") = true;
  register_kafka_errors(m);

  m.def("librdkafka_version", [] { return RdKafka::version_str(); });
  m.def("kafka_consumer_defaults", [] { return properties_dict(kafka::consumer_defaults()); });
  m.def("kafka_producer_defaults", [] { return properties_dict(kafka::producer_defaults()); });
  m.def("kafka_redacted", [](const py::object& properties) {
    return properties_dict(kafka::redacted(to_properties(properties)));
  });
  m.def(
      "event_hubs_properties",
      [](std::string_view connection_string) {
        return properties_dict(kafka::event_hubs_properties(connection_string));
      },
      py::arg("connection_string"));
  m.def(
      "parse_event_hubs_connection_string",
      [](std::string_view text) {
        const auto parsed = kafka::parse_event_hubs_connection_string(text);
        py::dict d;
        d["host"] = parsed.host;
        d["key_name"] = parsed.key_name;
        d["entity_path"] = parsed.entity_path;
        d["bootstrap"] = parsed.bootstrap;
        return d;
      },
      py::arg("connection_string"));

  py::class_<kafka::KafkaSource, GilFreeHolder<kafka::KafkaSource>>(m, "KafkaSource")
      .def(py::init([](Hub& hub, const py::object& properties, std::vector<std::string> topics,
                       std::string channel, std::string event_type, std::string_view payload,
                       std::string group_prefix, std::string node_id, std::string_view start,
                       long long replay_max_events, long long replay_max_channels,
                       double replay_timeout, double poll_timeout,
                       long long replay_max_total_events) {
             kafka::KafkaSourceConfig config;
             config.properties = to_properties(properties);
             config.topics = std::move(topics);
             config.channel = std::move(channel);
             config.event_type = std::move(event_type);
             config.payload = kafka::parse_payload_format(payload);
             config.group_prefix = std::move(group_prefix);
             config.node_id = std::move(node_id);
             config.start = kafka::parse_start_position(start);
             config.replay_max_events = positive(replay_max_events, "replay_max_events");
             config.replay_max_channels = positive(replay_max_channels, "replay_max_channels");
             config.replay_max_total_events =
                 positive(replay_max_total_events, "replay_max_total_events");
             config.replay_timeout = positive_seconds(replay_timeout, "replay_timeout");
             config.poll_timeout = positive_seconds(poll_timeout, "poll_timeout");
             return make_gil_free<kafka::KafkaSource>(hub, std::move(config));
           }),
           py::arg("hub"), py::kw_only(), py::arg("properties"), py::arg("topics"),
           py::arg("channel") = "{topic}", py::arg("event_type") = "message",
           py::arg("payload") = "auto", py::arg("group_prefix") = "sessionstream",
           py::arg("node_id") = "", py::arg("start") = "latest",
           py::arg("replay_max_events") = 10000, py::arg("replay_max_channels") = 100000,
           py::arg("replay_timeout") = 2.0, py::arg("poll_timeout") = 0.1,
           py::arg("replay_max_total_events") = 1000000, py::keep_alive<1, 2>())
      .def("start", &kafka::KafkaSource::start, py::call_guard<py::gil_scoped_release>())
      .def("stop", &kafka::KafkaSource::stop, py::call_guard<py::gil_scoped_release>())
      .def_property_readonly("running", &kafka::KafkaSource::running)
      .def_property_readonly("group_id", &kafka::KafkaSource::group_id)
      .def(
          "wait_ready",
          [](const kafka::KafkaSource& s, double timeout) {
            const auto ms = positive_seconds(timeout, "timeout");
            py::gil_scoped_release release;
            return s.wait_ready(ms);
          },
          py::arg("timeout") = 10.0)
      .def("health",
           [](const kafka::KafkaSource& s) {
             kafka::KafkaSourceHealth h;
             {
               py::gil_scoped_release release;
               h = s.health();
             }
             return source_health(h);
           })
      .def("take_log_notes", &take_notes<kafka::KafkaSource>);

  py::class_<kafka::KafkaSessionPool, GilFreeHolder<kafka::KafkaSessionPool>>(m, "KafkaSessionPool")
      .def(py::init([](Hub& hub, const py::object& properties,
                       std::vector<std::pair<std::string, std::string>> domains,
                       std::string topic_template, std::string channel, std::string event_type,
                       std::string_view payload, std::string group_prefix, std::string_view start,
                       long long max_consumers, double idle_timeout, double sweep_interval,
                       bool delete_groups) {
             kafka::KafkaSessionPoolConfig config;
             config.properties = to_properties(properties);
             config.domains = std::move(domains);
             config.topic_template = std::move(topic_template);
             config.channel = std::move(channel);
             config.event_type = std::move(event_type);
             config.payload = kafka::parse_payload_format(payload);
             config.group_prefix = std::move(group_prefix);
             config.start = kafka::parse_start_position(start);
             config.max_consumers = positive(max_consumers, "max_consumers");
             config.idle_timeout = positive_seconds(idle_timeout, "idle_timeout");
             config.sweep_interval = positive_seconds(sweep_interval, "sweep_interval");
             config.delete_groups = delete_groups;
             return make_gil_free<kafka::KafkaSessionPool>(hub, std::move(config));
           }),
           py::arg("hub"), py::kw_only(), py::arg("properties"),
           py::arg("domains") = std::vector<std::pair<std::string, std::string>>{},
           py::arg("topic_template") = "{domain}", py::arg("channel") = "session:{session}",
           py::arg("event_type") = "{domain}", py::arg("payload") = "auto",
           py::arg("group_prefix") = "sessionstream", py::arg("start") = "latest",
           py::arg("max_consumers") = 100, py::arg("idle_timeout") = 3600.0,
           py::arg("sweep_interval") = 300.0, py::arg("delete_groups") = true,
           py::keep_alive<1, 2>())
      .def("start", &kafka::KafkaSessionPool::start, py::call_guard<py::gil_scoped_release>())
      .def("stop", &kafka::KafkaSessionPool::stop, py::call_guard<py::gil_scoped_release>())
      .def_property_readonly("running", &kafka::KafkaSessionPool::running)
      .def(
          "open",
          [](kafka::KafkaSessionPool& p, const std::string& session_id, const std::string& domain) {
            kafka::SessionConsumerStatus status;
            {
              py::gil_scoped_release release;
              status = p.open(session_id, domain);
            }
            return consumer_dict(status);
          },
          py::arg("session_id"), py::arg("domain"))
      .def("close", &kafka::KafkaSessionPool::close, py::arg("session_id"), py::arg("domain"),
           py::call_guard<py::gil_scoped_release>())
      .def("close_session", &kafka::KafkaSessionPool::close_session, py::arg("session_id"),
           py::call_guard<py::gil_scoped_release>())
      .def("sweep", &kafka::KafkaSessionPool::sweep, py::call_guard<py::gil_scoped_release>())
      .def(
          "wait_assigned",
          [](const kafka::KafkaSessionPool& p, const std::string& session_id,
             const std::string& domain, double timeout) {
            const auto ms = positive_seconds(timeout, "timeout");
            py::gil_scoped_release release;
            return p.wait_assigned(session_id, domain, ms);
          },
          py::arg("session_id"), py::arg("domain"), py::arg("timeout") = 10.0)
      .def(
          "wait_closed",
          [](const kafka::KafkaSessionPool& p, double timeout) {
            const auto ms = positive_seconds(timeout, "timeout");
            py::gil_scoped_release release;
            return p.wait_closed(ms);
          },
          py::arg("timeout") = 10.0)
      .def("health",
           [](const kafka::KafkaSessionPool& p) {
             kafka::KafkaSessionPoolHealth h;
             {
               py::gil_scoped_release release;
               h = p.health();
             }
             return pool_health(h);
           })
      .def("take_log_notes", &take_notes<kafka::KafkaSessionPool>);

  py::class_<kafka::KafkaSink, GilFreeHolder<kafka::KafkaSink>>(m, "KafkaSink")
      .def(py::init([](const py::object& properties, double queue_full_timeout) {
             kafka::KafkaSinkConfig config;
             config.properties = to_properties(properties);
             config.queue_full_timeout = positive_seconds(queue_full_timeout, "queue_full_timeout");
             return make_gil_free<kafka::KafkaSink>(std::move(config));
           }),
           py::kw_only(), py::arg("properties"), py::arg("queue_full_timeout") = 1.0)
      .def("start", &kafka::KafkaSink::start, py::call_guard<py::gil_scoped_release>())
      .def(
          "stop",
          [](kafka::KafkaSink& s, double flush_timeout) {
            const auto ms = std::chrono::milliseconds{
                static_cast<std::int64_t>(std::max(0.0, flush_timeout) * 1000.0)};
            py::gil_scoped_release release;
            s.stop(ms);
          },
          py::arg("flush_timeout") = 5.0)
      .def_property_readonly("running", &kafka::KafkaSink::running)
      .def(
          "produce",
          [](kafka::KafkaSink& s, const std::string& topic, const std::string& value,
             const std::optional<std::string>& key,
             const std::vector<std::pair<std::string, std::string>>& headers,
             std::int32_t partition) {
            py::gil_scoped_release release;
            s.produce(topic, value, key ? std::optional<std::string_view>{*key} : std::nullopt,
                      headers, partition);
          },
          py::arg("topic"), py::arg("value"), py::arg("key") = py::none(),
          py::arg("headers") = std::vector<std::pair<std::string, std::string>>{},
          py::arg("partition") = -1)
      .def(
          "flush",
          [](kafka::KafkaSink& s, double timeout) {
            const auto ms = std::chrono::milliseconds{
                static_cast<std::int64_t>(std::max(0.0, timeout) * 1000.0)};
            py::gil_scoped_release release;
            return s.flush(ms);
          },
          py::arg("timeout") = 10.0)
      .def("health",
           [](const kafka::KafkaSink& s) {
             kafka::KafkaSinkHealth h;
             {
               py::gil_scoped_release release;
               h = s.health();
             }
             return sink_health(h);
           })
      .def("take_log_notes", &take_notes<kafka::KafkaSink>);

  py::class_<kafka::KafkaAdmin, GilFreeHolder<kafka::KafkaAdmin>>(m, "KafkaAdmin")
      .def(py::init([](const py::object& properties) {
             return make_gil_free<kafka::KafkaAdmin>(to_properties(properties));
           }),
           py::arg("properties"))
      .def(
          "list_groups",
          [](kafka::KafkaAdmin& a, double timeout) {
            std::vector<kafka::GroupInfo> groups;
            {
              const auto ms = positive_seconds(timeout, "timeout");
              py::gil_scoped_release release;
              groups = a.list_groups(ms);
            }
            py::list out;
            for (const auto& g : groups) out.append(group_dict(g));
            return out;
          },
          py::arg("timeout") = 10.0)
      .def(
          "describe_group",
          [](kafka::KafkaAdmin& a, const std::string& group, double timeout) -> py::object {
            std::optional<kafka::GroupInfo> info;
            {
              const auto ms = positive_seconds(timeout, "timeout");
              py::gil_scoped_release release;
              info = a.describe_group(group, ms);
            }
            if (!info) return py::none();
            return group_dict(*info);
          },
          py::arg("group"), py::arg("timeout") = 10.0)
      .def(
          "delete_groups",
          [](kafka::KafkaAdmin& a, const std::vector<std::string>& groups, double timeout) {
            std::vector<std::pair<std::string, std::string>> results;
            {
              const auto ms = positive_seconds(timeout, "timeout");
              py::gil_scoped_release release;
              results = a.delete_groups(groups, ms);
            }
            py::dict out;
            for (const auto& [group, error] : results) out[py::str(group)] = error;
            return out;
          },
          py::arg("groups"), py::arg("timeout") = 10.0)
      .def(
          "create_topic",
          [](kafka::KafkaAdmin& a, const std::string& topic, int partitions, double timeout) {
            const auto ms = positive_seconds(timeout, "timeout");
            py::gil_scoped_release release;
            a.create_topic(topic, partitions, ms);
          },
          py::arg("topic"), py::arg("partitions") = 1, py::arg("timeout") = 10.0)
      .def(
          "partitions",
          [](kafka::KafkaAdmin& a, const std::string& topic, double timeout) {
            const auto ms = positive_seconds(timeout, "timeout");
            py::gil_scoped_release release;
            return a.partitions(topic, ms);
          },
          py::arg("topic"), py::arg("timeout") = 10.0)
      .def(
          "reachable",
          [](kafka::KafkaAdmin& a, double timeout) {
            const auto ms = positive_seconds(timeout, "timeout");
            py::gil_scoped_release release;
            return a.reachable(ms);
          },
          py::arg("timeout") = 5.0);
}

}  // namespace sessionstream::bindings

#else

#include <memory>

#include "sessionstream/common/errors.hpp"

namespace py = pybind11;

namespace sessionstream::bindings {

namespace {

constexpr const char* kUnbuilt =
    "Kafka is not available: this build of sessionstream was made without librdkafka "
    "(install librdkafka-dev >= 2.0 and rebuild with SESSIONSTREAM_WITH_KAFKA=ON)";

// Stand-ins so the names exist (imports and `except KafkaError` keep working) and
// say why they cannot be used.
struct UnbuiltKafkaSource {};
struct UnbuiltKafkaSessionPool {};
struct UnbuiltKafkaSink {};
struct UnbuiltKafkaAdmin {};

template <typename Stub>
void add_unbuilt_class(py::module_& m, const char* name) {
  py::class_<Stub>(m, name).def(py::init(
      [](const py::args&, const py::kwargs&) -> std::unique_ptr<Stub> { throw Error(kUnbuilt); }));
}

void add_unbuilt_function(py::module_& m, const char* name) {
  m.def(name, [](const py::args&, const py::kwargs&) -> py::object { throw Error(kUnbuilt); });
}

}  // namespace

void register_kafka(py::module_& m) {
  m.attr("HAS_KAFKA") = false;
  const py::object base = m.attr("SessionStreamError");
  PyObject* kafka_error = PyErr_NewExceptionWithDoc(
      "sessionstream.KafkaError", "A Kafka client call failed; .code is librdkafka's error name.",
      base.ptr(), nullptr);
  if (kafka_error == nullptr) throw py::error_already_set();
  m.add_object("KafkaError", py::reinterpret_steal<py::object>(kafka_error));
  PyObject* pool_full = PyErr_NewExceptionWithDoc(
      "sessionstream.KafkaPoolFullError",
      "The Kafka session pool is at max_consumers; .limit is the limit.", kafka_error, nullptr);
  if (pool_full == nullptr) throw py::error_already_set();
  m.add_object("KafkaPoolFullError", py::reinterpret_steal<py::object>(pool_full));

  for (const char* name :
       {"librdkafka_version", "kafka_consumer_defaults", "kafka_producer_defaults",
        "kafka_redacted", "event_hubs_properties", "parse_event_hubs_connection_string"}) {
    add_unbuilt_function(m, name);
  }
  add_unbuilt_class<UnbuiltKafkaSource>(m, "KafkaSource");
  add_unbuilt_class<UnbuiltKafkaSessionPool>(m, "KafkaSessionPool");
  add_unbuilt_class<UnbuiltKafkaSink>(m, "KafkaSink");
  add_unbuilt_class<UnbuiltKafkaAdmin>(m, "KafkaAdmin");
}

}  // namespace sessionstream::bindings

#endif
