#include "bindings.hpp"

PYBIND11_MODULE(_core, m) {
  m.doc() = "Native core of sessionstream: hub, connections, session store.";
  sessionstream::bindings::register_errors(m);
  sessionstream::bindings::register_hub(m);
  sessionstream::bindings::register_connections(m);
  sessionstream::bindings::register_store(m);
  sessionstream::bindings::register_kafka(m);
  sessionstream::bindings::register_redis(m);
  sessionstream::bindings::register_redis_bus(m);
  sessionstream::bindings::register_edge(m);
}
