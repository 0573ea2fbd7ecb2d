// pybind11 glue for the Redis pub/sub source and the Redis session store; no
// logic beyond argument conversion. Every call that may block releases the GIL.

#include <pybind11/stl.h>

#include "bindings.hpp"
#include "conversions.hpp"
#include "sessionstream/common/errors.hpp"
#include "sessionstream/sessions/session_store.hpp"

#ifndef SESSIONSTREAM_NO_REDIS

#include "sessionstream/core/hub.hpp"
#include "sessionstream/sources/redis/config.hpp"
#include "sessionstream/sources/redis/session_store.hpp"
#include "sessionstream/sources/redis/source.hpp"

namespace py = pybind11;

namespace sessionstream::bindings {

namespace {

using redis::RedisSessionStore;
using redis::RedisSource;

py::dict source_health(const redis::RedisSourceHealth& h) {
  py::dict d;
  d["status"] = h.status;
  d["reason"] = error_text(h.reason);
  d["running"] = h.running;
  d["connected"] = h.connected;
  py::list patterns;
  for (const auto& p : h.patterns) patterns.append(error_text(p));
  d["patterns"] = patterns;
  d["subscriptions"] = h.subscriptions;
  d["connections"] = h.connections;
  d["received"] = h.received;
  d["published"] = h.published;
  py::dict skipped;
  for (std::size_t i = 0; i < redis::kSkipKinds; ++i) {
    skipped[redis::to_string(static_cast<redis::SkipKind>(i))] = h.skipped[i];
  }
  d["skipped"] = skipped;
  d["reconnects"] = h.reconnects;
  d["errors"] = h.errors;
  d["last_error"] = error_text(h.last_error);
  d["endpoint"] = error_text(h.endpoint);
  d["log_notes_dropped"] = h.log_notes_dropped;
  d["log_notes_suppressed"] = h.log_notes_suppressed;
  d["thread_faults"] = thread_faults_dict(h.thread_faults);
  return d;
}

py::dict store_health(const redis::RedisSessionStoreHealth& h) {
  py::dict d;
  d["connected"] = h.connected;
  d["endpoint"] = error_text(h.endpoint);
  d["key_prefix"] = h.key_prefix;
  d["errors"] = h.errors;
  d["last_error"] = error_text(h.last_error);
  return d;
}

}  // namespace

void register_redis(py::module_& m) {
  m.attr("HAS_REDIS") = true;
  m.def(
      "validate_redis_url", [](std::string_view url) { return redis::parse_url(url).redacted(); },
      py::arg("url"),
      "Parses a redis:// URL; returns it with the password masked. Raises InvalidArgumentError.");

  py::class_<RedisSource, GilFreeHolder<RedisSource>>(m, "RedisSource")
      .def(py::init([](Hub& hub, std::string_view url, std::vector<std::string> patterns,
                       std::string channel, std::string event_type, std::string_view payload,
                       double connect_timeout) {
             redis::RedisSourceConfig config;
             config.endpoint = redis::parse_url(url);
             config.patterns = std::move(patterns);
             config.channel = std::move(channel);
             config.event_type = std::move(event_type);
             config.payload = redis::parse_payload_format(payload);
             config.connect_timeout = positive_seconds(connect_timeout, "connect_timeout");
             return make_gil_free<RedisSource>(hub, std::move(config));
           }),
           py::arg("hub"), py::arg("url"), py::arg("patterns"), py::kw_only(),
           py::arg("channel") = "{channel}", py::arg("event_type") = "message",
           py::arg("payload") = "auto", py::arg("connect_timeout") = 2.0, py::keep_alive<1, 2>())
      .def("start", &RedisSource::start, py::call_guard<py::gil_scoped_release>())
      .def("stop", &RedisSource::stop, py::call_guard<py::gil_scoped_release>())
      .def_property_readonly("running", &RedisSource::running)
      .def(
          "wait_connected",
          [](const RedisSource& s, double timeout) {
            const auto ms = positive_seconds(timeout, "timeout");
            py::gil_scoped_release release;
            return s.wait_connected(ms);
          },
          py::arg("timeout") = 10.0)
      .def("health",
           [](const RedisSource& s) {
             redis::RedisSourceHealth h;
             {
               py::gil_scoped_release release;
               h = s.health();
             }
             return source_health(h);
           })
      .def("take_log_notes", &take_notes<RedisSource>);

  // A SessionStore in Python: every method of the base class applies.
  py::class_<RedisSessionStore, SessionStore, GilFreeHolder<RedisSessionStore>>(m,
                                                                                "RedisSessionStore")
      .def(py::init([](std::string_view url, std::string key_prefix, double idle_timeout,
                       long long max_history_entries, long long max_value_bytes,
                       double connect_timeout) {
             redis::RedisSessionStoreConfig config;
             config.endpoint = redis::parse_url(url);
             config.key_prefix = std::move(key_prefix);
             config.store.idle_timeout = positive_seconds(idle_timeout, "idle_timeout");
             config.store.max_history_entries =
                 positive(max_history_entries, "max_history_entries");
             config.store.max_value_bytes = positive(max_value_bytes, "max_value_bytes");
             config.connect_timeout = positive_seconds(connect_timeout, "connect_timeout");
             config.io_timeout = std::max(config.connect_timeout, std::chrono::milliseconds{2'000});
             // Never connects here: Redis may come up after the app does.
             return make_gil_free<RedisSessionStore>(std::move(config));
           }),
           py::arg("url"), py::kw_only(), py::arg("key_prefix") = "sessionstream",
           py::arg("idle_timeout") = 3600.0, py::arg("max_history_entries") = 1000,
           py::arg("max_value_bytes") = 1 << 20, py::arg("connect_timeout") = 2.0)
      .def("health", [](const RedisSessionStore& s) {
        redis::RedisSessionStoreHealth h;
        {
          py::gil_scoped_release release;
          h = s.health();
        }
        return store_health(h);
      });
}

}  // namespace sessionstream::bindings

#else

namespace py = pybind11;

namespace sessionstream::bindings {

namespace {

constexpr const char* kUnbuilt = "built without hiredis: install libhiredis-dev and reinstall";

// Stand-ins so the names exist and say why they cannot be used.
struct UnbuiltRedisSource {};
struct UnbuiltRedisSessionStore {};

}  // namespace

void register_redis(py::module_& m) {
  m.attr("HAS_REDIS") = false;
  m.def(
      "validate_redis_url", [](const py::object&) -> std::string { throw Error(kUnbuilt); },
      py::arg("url"));
  py::class_<UnbuiltRedisSource>(m, "RedisSource")
      .def(py::init([](const py::args&, const py::kwargs&) -> std::unique_ptr<UnbuiltRedisSource> {
        throw Error(kUnbuilt);
      }));
  py::class_<UnbuiltRedisSessionStore>(m, "RedisSessionStore")
      .def(py::init([](const py::args&, const py::kwargs&)
                        -> std::unique_ptr<UnbuiltRedisSessionStore> { throw Error(kUnbuilt); }));
}

}  // namespace sessionstream::bindings

#endif
