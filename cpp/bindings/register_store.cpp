#include <pybind11/stl.h>

#include "bindings.hpp"
#include "conversions.hpp"
#include "sessionstream/common/errors.hpp"
#include "sessionstream/sessions/session_store.hpp"

namespace py = pybind11;

namespace sessionstream::bindings {

namespace {

SessionStoreConfig memory_store_config(double idle_timeout, double sweep_interval,
                                       long long max_history_entries, long long max_value_bytes) {
  SessionStoreConfig config;
  config.idle_timeout = positive_seconds(idle_timeout, "idle_timeout");
  config.sweep_interval = positive_seconds(sweep_interval, "sweep_interval");
  config.max_history_entries = positive(max_history_entries, "max_history_entries");
  config.max_value_bytes = positive(max_value_bytes, "max_value_bytes");
  return config;
}

}  // namespace

void register_store(py::module_& m) {
  // The interface, as in C++, so every store binds as a subclass.
  using Store = SessionStore;
  using release = py::call_guard<py::gil_scoped_release>;
  py::class_<Store, GilFreeHolder<Store>>(m, "SessionStore")
      // Kept for code written before MemorySessionStore had a name of its own.
      .def(py::init([](double idle_timeout, double sweep_interval, long long max_history_entries,
                       long long max_value_bytes) {
             if (PyErr_WarnEx(PyExc_DeprecationWarning,
                              "SessionStore(...) is deprecated: construct MemorySessionStore(...)",
                              1) != 0) {
               throw py::error_already_set();
             }
             return GilFreeHolder<Store>{
                 make_gil_free<MemorySessionStore>(memory_store_config(idle_timeout, sweep_interval,
                                                                       max_history_entries,
                                                                       max_value_bytes))
                     .release()};
           }),
           py::kw_only(), py::arg("idle_timeout") = 3600.0, py::arg("sweep_interval") = 300.0,
           py::arg("max_history_entries") = 1000, py::arg("max_value_bytes") = 1 << 20)
      .def("set", &Store::set, py::arg("session_id"), py::arg("key"), py::arg("value"), release())
      .def("get", &Store::get, py::arg("session_id"), py::arg("key"), release())
      .def("delete", &Store::erase, py::arg("session_id"), py::arg("key"), release())
      .def("keys", &Store::keys, py::arg("session_id"), release())
      .def("append_history", &Store::append_history, py::arg("session_id"), py::arg("entry"),
           release())
      .def(
          "history",
          [](Store& store, std::string_view session_id, long long limit) {
            const auto n = positive(limit, "limit");
            py::gil_scoped_release unlocked;
            return store.history(session_id, n);
          },
          py::arg("session_id"), py::arg("limit") = 100)
      .def("touch", &Store::touch, py::arg("session_id"), release())
      .def("erase_session", &Store::erase_session, py::arg("session_id"), release())
      .def("__contains__", &Store::contains, release())
      .def("__len__", &Store::size, release())
      .def("sweep", &Store::sweep, release());

  py::class_<MemorySessionStore, Store, GilFreeHolder<MemorySessionStore>>(m, "MemorySessionStore")
      .def(py::init([](double idle_timeout, double sweep_interval, long long max_history_entries,
                       long long max_value_bytes) {
             return make_gil_free<MemorySessionStore>(memory_store_config(
                 idle_timeout, sweep_interval, max_history_entries, max_value_bytes));
           }),
           py::kw_only(), py::arg("idle_timeout") = 3600.0, py::arg("sweep_interval") = 300.0,
           py::arg("max_history_entries") = 1000, py::arg("max_value_bytes") = 1 << 20);
}

}  // namespace sessionstream::bindings
