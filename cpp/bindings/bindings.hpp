#pragma once

#include <pybind11/pybind11.h>

#include <string_view>

namespace sessionstream::bindings {

// The text of a native error as a Python str. Native messages are UTF-8, but
// a message is never allowed to fail the mapping: invalid bytes decode as
// U+FFFD. Needs the GIL.
pybind11::str error_text(std::string_view what);

void register_errors(pybind11::module_& m);
void register_hub(pybind11::module_& m);
void register_connections(pybind11::module_& m);
void register_store(pybind11::module_& m);
void register_kafka(pybind11::module_& m);
void register_redis(pybind11::module_& m);
void register_redis_bus(pybind11::module_& m);
void register_edge(pybind11::module_& m);

}  // namespace sessionstream::bindings
