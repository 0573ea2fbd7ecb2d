// pybind11 glue for the Redis Streams bus; no logic beyond argument
// conversion. Every call that may block releases the GIL.

#include "bindings.hpp"
#include "conversions.hpp"
#include "sessionstream/common/errors.hpp"

#ifndef SESSIONSTREAM_NO_REDIS

#include <pybind11/stl.h>

#include "sessionstream/core/hub.hpp"
#include "sessionstream/sources/redis/config.hpp"
#include "sessionstream/sources/redis/stream_bus.hpp"

namespace py = pybind11;

namespace sessionstream::bindings {

namespace {

using redis::RedisStreamBus;

py::dict bus_health(const redis::RedisStreamBusHealth& h) {
  py::dict d;
  d["status"] = h.status;
  d["reason"] = error_text(h.reason);
  d["running"] = h.running;
  d["connected"] = h.connected;
  d["epoch"] = h.epoch;
  d["head"] = h.head;
  d["published"] = h.published;
  d["received"] = h.received;
  d["duplicates"] = h.duplicates;
  d["lost"] = h.lost;
  py::dict skipped;
  for (std::size_t i = 0; i < redis::kBusSkipKinds; ++i) {
    skipped[redis::to_string(static_cast<redis::BusSkipKind>(i))] = h.skipped[i];
  }
  d["skipped"] = skipped;
  d["reconnects"] = h.reconnects;
  d["errors"] = h.errors;
  d["last_error"] = error_text(h.last_error);
  d["replays"] = h.replays;
  d["replayed_events"] = h.replayed_events;
  d["replay_gaps"] = h.replay_gaps;
  d["stream_key"] = error_text(h.stream_key);
  d["max_len"] = h.max_len;
  d["endpoint"] = error_text(h.endpoint);
  d["connections"] = h.connections;
  d["log_notes_dropped"] = h.log_notes_dropped;
  d["log_notes_suppressed"] = h.log_notes_suppressed;
  d["thread_faults"] = thread_faults_dict(h.thread_faults);
  return d;
}

}  // namespace

void register_redis_bus(py::module_& m) {
  py::class_<RedisStreamBus, GilFreeHolder<RedisStreamBus>>(m, "RedisStreamBus")
      .def(py::init([](Hub& hub, std::string_view url, std::string key_prefix, long long max_len,
                       double connect_timeout, double catch_up_timeout) {
             redis::RedisStreamBusConfig config;
             config.endpoint = redis::parse_url(url);
             config.key_prefix = std::move(key_prefix);
             config.max_len = positive(max_len, "max_len");
             config.connect_timeout = positive_seconds(connect_timeout, "connect_timeout");
             config.catch_up_timeout = positive_seconds(catch_up_timeout, "catch_up_timeout");
             return make_gil_free<RedisStreamBus>(hub, std::move(config));
           }),
           py::arg("hub"), py::arg("url"), py::kw_only(), py::arg("key_prefix") = "sessionstream",
           py::arg("max_len") = 10000, py::arg("connect_timeout") = 2.0,
           py::arg("catch_up_timeout") = 1.0, py::keep_alive<1, 2>())
      .def("start", &RedisStreamBus::start, py::call_guard<py::gil_scoped_release>())
      .def("stop", &RedisStreamBus::stop, py::call_guard<py::gil_scoped_release>())
      .def_property_readonly("running", &RedisStreamBus::running)
      .def_property_readonly("stream_key", &RedisStreamBus::stream_key)
      .def(
          "wait_ready",
          [](const RedisStreamBus& bus, double timeout) {
            const auto ms = positive_seconds(timeout, "timeout");
            py::gil_scoped_release release;
            return bus.wait_ready(ms);
          },
          py::arg("timeout") = 10.0)
      .def(
          "publish",
          [](RedisStreamBus& bus, const py::handle& channel, const py::handle& data,
             const py::handle& event, bool json) {
            const std::string channel_bytes = text_bytes(channel, "channel");
            std::string data_bytes = text_bytes(data, "data");
            std::string event_bytes = text_bytes(event, "event");
            py::gil_scoped_release release;
            return bus.publish(channel_bytes, std::move(data_bytes), std::move(event_bytes), json);
          },
          py::arg("channel"), py::arg("data"), py::arg("event") = "message", py::kw_only(),
          py::arg("json") = false)
      .def("health",
           [](const RedisStreamBus& bus) {
             redis::RedisStreamBusHealth h;
             {
               py::gil_scoped_release release;
               h = bus.health();
             }
             return bus_health(h);
           })
      .def("take_log_notes", &take_notes<RedisStreamBus>);
}

}  // namespace sessionstream::bindings

#else

namespace py = pybind11;

namespace sessionstream::bindings {

namespace {
// Stands in for the class so the name exists and says why it cannot be used.
struct MissingRedisStreamBus {};
}  // namespace

void register_redis_bus(py::module_& m) {
  py::class_<MissingRedisStreamBus>(m, "RedisStreamBus")
      .def(py::init([](const py::args&,
                       const py::kwargs&) -> std::unique_ptr<MissingRedisStreamBus> {
        throw Error(
            "RedisStreamBus is not available: this build of sessionstream was made without "
            "hiredis (install libhiredis-dev, or your platform's hiredis package, and rebuild)");
      }));
}

}  // namespace sessionstream::bindings

#endif
