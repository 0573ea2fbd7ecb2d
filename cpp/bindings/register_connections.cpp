#include <pybind11/stl.h>

#include "bindings.hpp"
#include "conversions.hpp"
#include "sessionstream/common/errors.hpp"
#include "sessionstream/common/utf8.hpp"
#include "sessionstream/sessions/connection_manager.hpp"
#include "sessionstream/sessions/session_id.hpp"

namespace py = pybind11;

namespace sessionstream::bindings {

namespace {

const char* to_string(ResumeOutcome outcome) {
  switch (outcome) {
    case ResumeOutcome::live:
      return "live";
    case ResumeOutcome::exact:
      return "exact";
    case ResumeOutcome::gap:
      return "gap";
    case ResumeOutcome::reset:
      return "reset";
  }
  return "live";
}

double unix_seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

py::dict connection_dict(const ConnectionInfo& info) {
  py::dict d;
  d["id"] = info.id;
  d["session_id"] = info.session_id;
  d["ip"] = info.ip;
  d["group"] = info.group;
  d["processing"] = info.processing;
  d["standby"] = info.standby;
  d["connected_at"] = unix_seconds(info.connected_at);
  return d;
}

py::dict session_dict(const SessionView& view) {
  py::dict d;
  d["session_id"] = view.session_id;
  d["channels"] = view.channels;
  d["connections"] = view.connections;
  d["created"] = unix_seconds(view.created);
  return d;
}

}  // namespace

void register_connections(py::module_& m) {
  py::class_<Connection, std::shared_ptr<Connection>>(m, "Connection")
      .def_property_readonly("id", &Connection::id)
      .def_property_readonly("session_id", &Connection::session_id)
      .def_property_readonly("ip", &Connection::ip)
      .def_property_readonly("resume",
                             [](const Connection& c) { return to_string(c.resume_outcome()); })
      .def_property_readonly("closed", &Connection::is_closed)
      .def_property_readonly("pending_events",
                             [](const Connection& c) { return c.mailbox()->pending_events(); })
      .def_property_readonly("channels", &Connection::channels)
      .def(
          "take",
          [](Connection& c, long long max_bytes) {
            const auto limit = positive(max_bytes, "max_bytes");
            Mailbox::Batch batch;
            {
              py::gil_scoped_release release;
              batch = c.mailbox()->take(limit);
            }
            return py::make_tuple(py::bytes(batch.data), batch.closed, batch.close_reason);
          },
          py::arg("max_bytes") = 262144)
      .def(
          "subscribe",
          // Names and ids straight from client messages: text_bytes lets a str
          // with lone surrogates reach the core's validation (a clear refusal)
          // instead of failing the call with a TypeError.
          [](Connection& c, const py::iterable& channels, const py::object& last_event_id) {
            if (py::isinstance<py::str>(channels) || py::isinstance<py::bytes>(channels)) {
              throw py::type_error("channels must be a list of names, not one str");
            }
            std::vector<std::string> names;
            for (const py::handle channel : channels) {
              names.push_back(text_bytes(channel, "channel"));
            }
            std::optional<std::string> last;
            if (!last_event_id.is_none()) last = text_bytes(last_event_id, "last_event_id");
            py::gil_scoped_release release;
            return to_string(c.subscribe(names, last));
          },
          py::arg("channels"), py::arg("last_event_id") = py::none())
      .def(
          "unsubscribe",
          [](Connection& c, const py::handle& channel) {
            const std::string name = text_bytes(channel, "channel");
            py::gil_scoped_release release;
            c.unsubscribe(name);
          },
          py::arg("channel"))
      .def("close", &Connection::close, py::arg("reason") = "client_gone",
           py::call_guard<py::gil_scoped_release>())
      .def("__repr__", [](const Connection& c) {
        return "<Connection " + std::to_string(c.id()) + " session=" + c.session_id() +
               (c.is_closed() ? " closed>" : ">");
      });

  py::class_<ConnectionManager>(m, "ConnectionManager")
      .def(py::init([](Hub& hub, long long max_connections, long long max_per_ip,
                       long long max_per_session, std::string_view policy) {
             ConnectionLimits limits{positive(max_connections, "max_connections"),
                                     positive(max_per_ip, "max_per_ip"),
                                     positive(max_per_session, "max_per_session")};
             return std::make_unique<ConnectionManager>(hub, limits,
                                                        parse_connection_policy(policy));
           }),
           py::arg("hub"), py::kw_only(), py::arg("max_connections") = 10000,
           py::arg("max_per_ip") = 1000, py::arg("max_per_session") = 32, py::arg("policy") = "all",
           py::keep_alive<1, 2>())
      .def(
          "open",
          [](ConnectionManager& manager, std::string session_id, std::shared_ptr<Notifier> notifier,
             std::string ip, std::vector<std::string> channels,
             std::optional<std::string> last_event_id, std::string_view framing,
             std::string_view overflow, long long mailbox_events, long long mailbox_bytes,
             std::optional<std::string_view> policy, std::string group) {
            ConnectionRequest request;
            request.session_id = std::move(session_id);
            request.ip = std::move(ip);
            request.channels = std::move(channels);
            request.last_event_id = std::move(last_event_id);
            request.mailbox.framing = parse_framing(framing);
            request.mailbox.overflow = parse_overflow_policy(overflow);
            request.mailbox.limits = {positive(mailbox_events, "mailbox_events"),
                                      positive(mailbox_bytes, "mailbox_bytes")};
            if (policy) request.policy = parse_connection_policy(*policy);
            request.group = std::move(group);
            py::gil_scoped_release release;
            return manager.open(std::move(request), std::move(notifier));
          },
          py::arg("session_id"), py::kw_only(), py::arg("notifier"), py::arg("ip") = "",
          py::arg("channels") = std::vector<std::string>{}, py::arg("last_event_id") = py::none(),
          py::arg("framing") = "sse", py::arg("overflow") = "disconnect",
          py::arg("mailbox_events") = 1024, py::arg("mailbox_bytes") = 1 << 20,
          py::arg("policy") = py::none(), py::arg("group") = "", py::keep_alive<0, 1>())
      .def("mark_processing", &ConnectionManager::mark_processing,
           py::call_guard<py::gil_scoped_release>())
      .def("unmark_processing", &ConnectionManager::unmark_processing,
           py::call_guard<py::gil_scoped_release>())
      .def("is_processing", &ConnectionManager::is_processing,
           py::call_guard<py::gil_scoped_release>())
      .def(
          "send_personal",
          [](ConnectionManager& manager, std::string_view session_id, const py::handle& data,
             const py::handle& event, bool json) {
            std::string data_bytes = text_bytes(data, "data");
            std::string event_bytes = text_bytes(event, "event");
            py::gil_scoped_release release;
            return manager
                .send_personal(session_id, std::move(event_bytes), std::move(data_bytes), json)
                ->id_text();
          },
          py::arg("session_id"), py::arg("data"), py::arg("event") = "message", py::kw_only(),
          py::arg("json") = false)
      .def("disconnect_channel", &ConnectionManager::disconnect_channel,
           py::call_guard<py::gil_scoped_release>())
      .def("close_session", &ConnectionManager::close_session, py::arg("session_id"),
           py::arg("reason") = "session_cleanup", py::call_guard<py::gil_scoped_release>())
      .def("close_connection", &ConnectionManager::close_connection, py::arg("session_id"),
           py::arg("connection_id"), py::arg("reason") = "client_gone",
           py::call_guard<py::gil_scoped_release>())
      .def("record_client_message", &ConnectionManager::record_client_message)
      .def("record_error", &ConnectionManager::record_error)
      .def("metrics",
           [](const ConnectionManager& manager) {
             ConnectionMetrics m;
             {
               // The manager's lock is the one open and close contend for.
               py::gil_scoped_release release;
               m = manager.metrics();
             }
             py::dict d;
             d["active_connections"] = m.active_connections;
             d["unique_browser_sessions"] = m.unique_browser_sessions;
             d["processing_connections"] = m.processing_connections;
             d["pending_swaps"] = m.pending_swaps;
             d["standby_connections"] = m.standby_connections;
             d["opened_lifetime"] = m.opened_lifetime;
             d["errors"] = m.errors;
             d["client_messages"] = m.client_messages;
             d["uptime_seconds"] = m.uptime_seconds;
             d["client_messages_per_connection"] = m.client_messages_per_connection;
             for (const auto kind :
                  {LimitKind::server_full, LimitKind::per_ip, LimitKind::per_session}) {
               d[(std::string{"rejections_"} + to_string(kind)).c_str()] =
                   m.rejections[static_cast<std::size_t>(kind)];
             }
             return d;
           })
      .def(
          "session",
          [](const ConnectionManager& manager, const std::string& session_id) -> py::object {
            std::optional<SessionView> view;
            {
              py::gil_scoped_release release;
              view = manager.session(session_id);
            }
            if (!view) return py::none();
            return session_dict(*view);
          },
          py::arg("session_id"))
      .def(
          "sessions",
          [](const ConnectionManager& manager, long long limit, const std::string& after) {
            const auto bound = positive(limit, "limit");
            std::vector<SessionView> views;
            {
              py::gil_scoped_release release;
              views = manager.sessions(bound, after);
            }
            py::list result;
            for (const auto& view : views) result.append(session_dict(view));
            return result;
          },
          py::arg("limit") = 100, py::arg("after") = "")
      .def("session_count", &ConnectionManager::session_count,
           py::call_guard<py::gil_scoped_release>())
      .def("connections_of",
           [](const ConnectionManager& manager, std::string_view session_id) {
             std::vector<ConnectionInfo> infos;
             {
               py::gil_scoped_release release;
               infos = manager.connections_of(session_id);
             }
             py::list result;
             for (const auto& info : infos) {
               result.append(connection_dict(info));
             }
             return result;
           })
      .def("shutdown", &ConnectionManager::shutdown, py::call_guard<py::gil_scoped_release>());

  m.attr("REPLACED_EVENT_ID") = std::string{replaced_stream_id};
  m.def("is_valid_session_id", &is_valid_session_id);
  m.def("validate_session_id", &validate_session_id);
  m.def("generate_session_id", &generate_session_id);
  m.def("private_channel", &private_channel);
  m.def("is_foreign_private_channel", [](const py::handle& channel, const py::handle& session_id) {
    return is_foreign_private_channel(text_bytes(channel, "channel"),
                                      text_bytes(session_id, "session_id"));
  });
}

}  // namespace sessionstream::bindings
