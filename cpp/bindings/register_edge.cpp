#include <pybind11/stl.h>

#include <cmath>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bindings.hpp"
#include "conversions.hpp"
#include "sessionstream/common/errors.hpp"
#include "sessionstream/edge/engine.hpp"

namespace py = pybind11;

namespace sessionstream::bindings {

namespace {

using edge::Engine;
using edge::EngineConfig;
using edge::InboundMessage;

std::chrono::milliseconds timeout_seconds(double seconds) {
  if (!(seconds >= 0) || !std::isfinite(seconds)) {
    throw InvalidArgument("timeout must be a finite number of seconds >= 0, got " +
                          std::to_string(seconds));
  }
  return std::chrono::milliseconds{static_cast<std::int64_t>(seconds * 1000.0)};
}

int non_negative_int(long long value, const char* name) {
  if (value < 0 || value > 86'400'000) {
    throw InvalidArgument(std::string{name} + " must be between 0 and 86400000, got " +
                          std::to_string(value));
  }
  return static_cast<int>(value);
}

py::str utf8(const std::string& text) {
  // Beast validated client text as UTF-8; replace anything else rather than fail.
  return py::reinterpret_steal<py::str>(
      PyUnicode_DecodeUTF8(text.data(), static_cast<Py_ssize_t>(text.size()), "replace"));
}

}  // namespace

void register_edge(py::module_& m) {
  py::class_<Engine, GilFreeHolder<Engine>> engine(
      m, "Engine", "Native delivery of adopted SSE and WebSocket connections on its own threads.");
  engine.attr("INBOUND_TOKEN") = py::int_(Engine::kInboundToken);
  engine
      .def(py::init([](std::shared_ptr<Notifier> host_notifier, long long threads,
                       double heartbeat_interval, double send_timeout, long long max_batch_bytes,
                       long long shutdown_retry_ms, long long ws_max_message_bytes,
                       double ws_messages_per_second, long long ws_message_burst,
                       double ws_idle_timeout, long long outbox_max_frames) {
             EngineConfig config;
             config.threads = positive(threads, "threads");
             config.heartbeat_interval = positive_seconds(heartbeat_interval, "heartbeat_interval");
             config.send_timeout = positive_seconds(send_timeout, "send_timeout");
             config.max_batch_bytes = positive(max_batch_bytes, "max_batch_bytes");
             config.shutdown_retry_ms = non_negative_int(shutdown_retry_ms, "shutdown_retry_ms");
             config.ws_max_message_bytes = positive(ws_max_message_bytes, "ws_max_message_bytes");
             config.ws_hard_max_message_bytes =
                 std::max(config.ws_hard_max_message_bytes, config.ws_max_message_bytes);
             config.ws_messages_per_second = ws_messages_per_second;
             config.ws_message_burst = positive(ws_message_burst, "ws_message_burst");
             config.ws_idle_timeout = positive_seconds(ws_idle_timeout, "ws_idle_timeout");
             config.outbox_max_frames = positive(outbox_max_frames, "outbox_max_frames");
             return make_gil_free<Engine>(config, std::move(host_notifier));
           }),
           py::arg("host_notifier"), py::kw_only(), py::arg("threads") = 1,
           py::arg("heartbeat_interval") = 15.0, py::arg("send_timeout") = 10.0,
           py::arg("max_batch_bytes") = 262144, py::arg("shutdown_retry_ms") = 5000,
           py::arg("ws_max_message_bytes") = 65536, py::arg("ws_messages_per_second") = 20.0,
           py::arg("ws_message_burst") = 40, py::arg("ws_idle_timeout") = 60.0,
           py::arg("outbox_max_frames") = 256)
      .def("next_notifier", &Engine::next_notifier)
      .def(
          "adopt_sse",
          [](Engine& e, int fd, ConnectionPtr connection, bool chunked, std::string initial,
             std::string buffered) {
            py::gil_scoped_release release;
            e.adopt_sse(fd, std::move(connection),
                        edge::SseAdopt{chunked, std::move(initial), std::move(buffered)});
          },
          py::arg("fd"), py::arg("connection"), py::kw_only(), py::arg("chunked"),
          py::arg("initial"), py::arg("buffered") = py::bytes())
      .def(
          "adopt_websocket",
          [](Engine& e, int fd, ConnectionPtr connection, std::string request,
             std::vector<std::pair<std::string, std::string>> headers, std::string welcome) {
            py::gil_scoped_release release;
            e.adopt_websocket(
                fd, std::move(connection),
                edge::WebSocketAdopt{std::move(request), std::move(headers), std::move(welcome)});
          },
          py::arg("fd"), py::arg("connection"), py::kw_only(), py::arg("request"),
          py::arg("headers") = std::vector<std::pair<std::string, std::string>>{},
          py::arg("welcome") = "")
      .def(
          "send_text",
          [](Engine& e, std::uint64_t connection_id, std::string text) {
            py::gil_scoped_release release;
            return e.send_text(connection_id, std::move(text));
          },
          py::arg("connection_id"), py::arg("text"))
      .def(
          "take_inbound",
          [](Engine& e, long long max) {
            const std::size_t limit = positive(max, "max");
            std::vector<InboundMessage> messages;
            {
              py::gil_scoped_release release;
              messages = e.take_inbound(limit);
            }
            py::list result;
            for (const InboundMessage& message : messages) {
              const char* kind = message.kind == InboundMessage::Kind::text ? "message" : "closed";
              result.append(py::make_tuple(message.connection_id, kind, utf8(message.text)));
            }
            return result;
          },
          py::arg("max") = 4096)
      .def("begin_shutdown", &Engine::begin_shutdown, py::call_guard<py::gil_scoped_release>())
      .def(
          "wait_idle",
          [](Engine& e, double timeout) {
            const auto limit = timeout_seconds(timeout);
            py::gil_scoped_release release;
            return e.wait_idle(limit);
          },
          py::arg("timeout"))
      .def("stop", &Engine::stop, py::call_guard<py::gil_scoped_release>())
      .def("metrics", [](const Engine& e) {
        const edge::EngineMetrics s = e.metrics();
        py::dict d;
        d["adopted_sse"] = s.adopted_sse;
        d["adopted_websocket"] = s.adopted_websocket;
        d["open_sse"] = s.open_sse;
        d["open_websocket"] = s.open_websocket;
        d["writes"] = s.writes;
        d["bytes_written"] = s.bytes_written;
        d["events_written"] = s.events_written;
        d["heartbeats"] = s.heartbeats;
        d["send_timeouts"] = s.send_timeouts;
        d["ws_messages_in"] = s.ws_messages_in;
        d["ws_rate_limited"] = s.ws_rate_limited;
        d["ws_oversized"] = s.ws_oversized;
        d["inbound_dropped"] = s.inbound_dropped;
        d["closed_total"] = s.closed_total;
        return d;
      });
}

}  // namespace sessionstream::bindings
