#pragma once

#include <pybind11/pybind11.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bindings.hpp"
#include "sessionstream/common/errors.hpp"
#include "sessionstream/common/log_note.hpp"
#include "sessionstream/common/thread_faults.hpp"

namespace sessionstream::bindings {

// Python ints and floats arrive signed; these reject what the core cannot
// take with a message naming the argument.
inline std::size_t positive(long long value, const char* name) {
  if (value <= 0) {
    throw InvalidArgument(std::string{name} + " must be positive, got " + std::to_string(value));
  }
  return static_cast<std::size_t>(value);
}

inline std::chrono::milliseconds positive_seconds(double seconds, const char* name) {
  if (!(seconds > 0)) {
    throw InvalidArgument(std::string{name} + " must be a positive number of seconds, got " +
                          std::to_string(seconds));
  }
  return std::chrono::milliseconds{static_cast<std::int64_t>(seconds * 1000.0)};
}

// A str or bytes argument as the bytes the core sees: a str as its UTF-8. A
// str that has none (lone surrogates) is passed encoded with surrogatepass, so
// the core refuses it like any other text that is not UTF-8, naming the byte
// offset, instead of the binding failing with a bare TypeError. Needs the GIL.
inline std::string text_bytes(const pybind11::handle& value, const char* name) {
  PyObject* object = value.ptr();
  if (PyUnicode_Check(object)) {
    Py_ssize_t size = 0;
    if (const char* data = PyUnicode_AsUTF8AndSize(object, &size)) {
      return {data, static_cast<std::size_t>(size)};
    }
    PyErr_Clear();
    const auto encoded = pybind11::reinterpret_steal<pybind11::object>(
        PyUnicode_AsEncodedString(object, "utf-8", "surrogatepass"));
    if (!encoded) throw pybind11::error_already_set();
    return {PyBytes_AS_STRING(encoded.ptr()),
            static_cast<std::size_t>(PyBytes_GET_SIZE(encoded.ptr()))};
  }
  if (PyBytes_Check(object)) {
    return {PyBytes_AS_STRING(object), static_cast<std::size_t>(PyBytes_GET_SIZE(object))};
  }
  if (PyByteArray_Check(object)) {
    return {PyByteArray_AS_STRING(object), static_cast<std::size_t>(PyByteArray_GET_SIZE(object))};
  }
  throw pybind11::type_error(std::string{name} + " must be str or bytes, got " +
                             Py_TYPE(object)->tp_name);
}

// Drained log notes as (level, kind, message) tuples. Notes quote record
// contents, channel names and client library texts: decoded leniently so one
// odd byte can never make the notes unreadable. Needs the GIL.
inline pybind11::list notes_list(const std::vector<LogNote>& notes) {
  pybind11::list out;
  for (const auto& note : notes) {
    out.append(pybind11::make_tuple(note.level, error_text(note.kind), error_text(note.message)));
  }
  return out;
}

// A component's contained native thread faults as {count, last, recent}. last
// quotes exception texts: decoded leniently. Needs the GIL.
inline pybind11::dict thread_faults_dict(const ThreadFaultReport& faults) {
  pybind11::dict d;
  d["count"] = faults.count;
  d["last"] = error_text(faults.last);
  d["recent"] = faults.recent;
  return d;
}

// Drains a component's notes with the GIL released (the native threads take
// the same lock to queue them), then converts them with the GIL held.
template <typename Component>
pybind11::list take_notes(Component& component) {
  std::vector<LogNote> notes;
  {
    pybind11::gil_scoped_release release;
    notes = component.take_log_notes();
  }
  return notes_list(notes);
}

// pybind11 destroys a holder with the GIL held. Destructors of objects that
// own threads join them (and may wait on network calls), so this deleter
// releases the GIL around the destructor whenever the calling thread holds it.
template <typename T>
struct GilReleasingDelete {
  void operator()(T* object) const {
    if (PyGILState_Check() != 0) {
      pybind11::gil_scoped_release release;
      std::default_delete<T>{}(object);
    } else {
      std::default_delete<T>{}(object);
    }
  }
};

template <typename T>
using GilFreeHolder = std::unique_ptr<T, GilReleasingDelete<T>>;

// Builds a T for a GilFreeHolder<T> holder, as py::init factories must return one.
template <typename T, typename... Args>
GilFreeHolder<T> make_gil_free(Args&&... args) {
  return GilFreeHolder<T>{std::make_unique<T>(std::forward<Args>(args)...).release()};
}

}  // namespace sessionstream::bindings
