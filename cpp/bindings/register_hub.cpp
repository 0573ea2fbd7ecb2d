#include <pybind11/stl.h>

#include "bindings.hpp"
#include "conversions.hpp"
#include "sessionstream/common/errors.hpp"
#include "sessionstream/core/hub.hpp"
#include "sessionstream/core/lifecycle.hpp"
#include "sessionstream/core/notifier.hpp"

namespace py = pybind11;

namespace sessionstream::bindings {

void register_hub(py::module_& m) {
  py::class_<Notifier, std::shared_ptr<Notifier>>(m, "Notifier")
      .def(py::init<>())
      .def("fileno", &Notifier::fd)
      .def("take_ready", &Notifier::take_ready, py::call_guard<py::gil_scoped_release>());

  py::class_<LifecycleEvent>(m, "LifecycleEvent")
      .def_property_readonly("kind", [](const LifecycleEvent& e) { return to_string(e.kind); })
      .def_readonly("connection_id", &LifecycleEvent::connection_id)
      .def_readonly("session_id", &LifecycleEvent::session_id)
      .def_readonly("other_connection_id", &LifecycleEvent::other_connection_id)
      .def_readonly("detail", &LifecycleEvent::detail)
      .def("__repr__", [](const LifecycleEvent& e) {
        return "<LifecycleEvent " + std::string{to_string(e.kind)} +
               " connection=" + std::to_string(e.connection_id) + " session=" + e.session_id + ">";
      });

  py::class_<Hub>(m, "Hub")
      .def(py::init([](long long history_max_events, double history_max_age,
                       long long max_event_bytes, std::uint64_t epoch, long long lifecycle_capacity,
                       std::string_view sequencing, long long max_channels_per_connection) {
             HubConfig config;
             config.sequencing = parse_sequencing(sequencing);
             config.history.max_events = positive(history_max_events, "history_max_events");
             config.history.max_age = positive_seconds(history_max_age, "history_max_age");
             config.max_event_bytes = positive(max_event_bytes, "max_event_bytes");
             config.epoch = epoch;
             config.max_channels_per_connection =
                 positive(max_channels_per_connection, "max_channels_per_connection");
             return std::make_unique<Hub>(config, std::make_shared<LifecycleQueue>(positive(
                                                      lifecycle_capacity, "lifecycle_capacity")));
           }),
           py::kw_only(), py::arg("history_max_events") = 1024, py::arg("history_max_age") = 300.0,
           py::arg("max_event_bytes") = 1 << 20, py::arg("epoch") = 0,
           py::arg("lifecycle_capacity") = 4096, py::arg("sequencing") = "local",
           py::arg("max_channels_per_connection") = 256)
      .def_property_readonly("epoch", &Hub::epoch)
      .def_property_readonly("sequencing",
                             [](const Hub& hub) {
                               return hub.sequencing() == Sequencing::external ? "external"
                                                                               : "local";
                             })
      .def_property_readonly("head_id",
                             [](const Hub& hub) {
                               // Reads under the hub mutex that publish holds.
                               py::gil_scoped_release release;
                               return hub.head_id();
                             })
      .def_property_readonly("closed", &Hub::is_closed)
      .def(
          "publish",
          [](Hub& hub, const py::handle& channel, const py::handle& data, const py::handle& event,
             bool json) {
            const std::string channel_bytes = text_bytes(channel, "channel");
            std::string data_bytes = text_bytes(data, "data");
            std::string event_bytes = text_bytes(event, "event");
            py::gil_scoped_release release;
            return hub.publish(channel_bytes, std::move(data_bytes), std::move(event_bytes), json)
                ->id_text();
          },
          py::arg("channel"), py::arg("data"), py::arg("event") = "message", py::kw_only(),
          py::arg("json") = false)
      .def("subscriber_count", &Hub::subscriber_count, py::call_guard<py::gil_scoped_release>())
      .def("channel_count", &Hub::channel_count, py::call_guard<py::gil_scoped_release>())
      .def("sweep", &Hub::sweep, py::call_guard<py::gil_scoped_release>())
      .def("close", &Hub::close, py::call_guard<py::gil_scoped_release>())
      .def("metrics",
           [](const Hub& hub) {
             const Metrics& m = hub.metrics();
             // Both counts take locks that publish and the lifecycle queue contend for.
             std::size_t channels = 0;
             std::uint64_t lifecycle_dropped = 0;
             {
               py::gil_scoped_release release;
               channels = hub.channel_count();
               lifecycle_dropped = hub.lifecycle()->dropped();
             }
             py::dict d;
             d["published"] = Metrics::read(m.published);
             d["delivered"] = Metrics::read(m.delivered);
             d["dropped"] = Metrics::read(m.dropped);
             d["slow_consumer_disconnects"] = Metrics::read(m.slow_consumer_disconnects);
             d["resumes_exact"] = Metrics::read(m.resumes_exact);
             d["resumes_gap"] = Metrics::read(m.resumes_gap);
             d["resumes_reset"] = Metrics::read(m.resumes_reset);
             d["transient"] = Metrics::read(m.transient);
             d["lost_gaps"] = Metrics::read(m.lost_gaps);
             d["lifecycle_dropped"] = lifecycle_dropped;
             d["channels"] = channels;
             return d;
           })
      .def("set_lifecycle_notifier",
           [](Hub& hub, std::shared_ptr<Notifier> notifier) {
             hub.lifecycle()->set_notifier(std::move(notifier));
           })
      .def(
          "take_lifecycle", [](Hub& hub) { return hub.lifecycle()->take(); },
          py::call_guard<py::gil_scoped_release>());
}

}  // namespace sessionstream::bindings
