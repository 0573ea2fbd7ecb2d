#pragma once

#include <pybind11/pybind11.h>

namespace sessionstream::bindings {

void register_errors(pybind11::module_& m);
void register_hub(pybind11::module_& m);
void register_connections(pybind11::module_& m);
void register_store(pybind11::module_& m);
void register_kafka(pybind11::module_& m);

}  // namespace sessionstream::bindings
