#include <exception>

#include "bindings.hpp"
#include "sessionstream/common/errors.hpp"
#include "sessionstream/sessions/limits.hpp"

namespace py = pybind11;

namespace sessionstream::bindings {

namespace {

// Exception types live as long as the interpreter; they are owned by the
// module object, these are borrowed handles to them.
PyObject* g_base = nullptr;
PyObject* g_invalid = nullptr;
PyObject* g_invalid_utf8 = nullptr;
PyObject* g_too_many_channels = nullptr;
PyObject* g_too_large = nullptr;
PyObject* g_closed = nullptr;
PyObject* g_limit = nullptr;
PyObject* g_unavailable = nullptr;

PyObject* make_exception(py::module_& m, const char* name, const char* doc, py::tuple bases) {
  const std::string qualified = std::string{"sessionstream."} + name;
  PyObject* type = PyErr_NewExceptionWithDoc(qualified.c_str(), doc, bases.ptr(), nullptr);
  if (type == nullptr) throw py::error_already_set();
  m.add_object(name, py::reinterpret_steal<py::object>(type));
  return type;
}

// Raises type(text) with the attributes set by decorate, or leaves whatever
// error building it raised (MemoryError) in place.
template <typename Decorate>
void set_error(PyObject* type, const char* what, Decorate decorate) {
  try {
    py::object instance = py::handle(type)(error_text(what));
    decorate(instance);
    PyErr_SetObject(type, instance.ptr());
  } catch (py::error_already_set& e) {
    e.restore();
  }
}

void set_error(PyObject* type, const char* what) {
  set_error(type, what, [](py::object&) {});
}

}  // namespace

py::str error_text(std::string_view what) {
  PyObject* text =
      PyUnicode_DecodeUTF8(what.data(), static_cast<Py_ssize_t>(what.size()), "replace");
  if (text == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::str>(text);
}

void register_errors(py::module_& m) {
  g_base = make_exception(m, "SessionStreamError", "Base class of every sessionstream error.",
                          py::make_tuple(py::handle(PyExc_Exception)));
  g_invalid = make_exception(m, "InvalidArgumentError",
                             "A value is outside its valid range; the message says what is valid.",
                             py::make_tuple(py::handle(g_base), py::handle(PyExc_ValueError)));
  g_invalid_utf8 = make_exception(
      m, "InvalidUtf8Error",
      "Text that must be UTF-8 is not; .field names it ('event' or 'data'), .offset is the "
      "byte offset of its first invalid sequence.",
      py::make_tuple(py::handle(g_invalid)));
  g_too_many_channels = make_exception(
      m, "TooManyChannelsError",
      "A subscribe would put a connection over its channel cap (.limit); nothing changed.",
      py::make_tuple(py::handle(g_invalid)));
  g_too_large = make_exception(m, "PayloadTooLargeError",
                               "An event or stored value exceeds the configured maximum.",
                               py::make_tuple(py::handle(g_base), py::handle(PyExc_ValueError)));
  g_closed = make_exception(m, "ClosedError", "The hub, manager or connection was closed.",
                            py::make_tuple(py::handle(g_base), py::handle(PyExc_RuntimeError)));
  g_limit = make_exception(m, "LimitExceededError", "A connection cap refused a new connection.",
                           py::make_tuple(py::handle(g_base)));
  g_unavailable = make_exception(
      m, "UnavailableError",
      "A shared service the call needs (Redis) cannot be reached; nothing was done, retry later.",
      py::make_tuple(py::handle(g_base), py::handle(PyExc_ConnectionError)));

  py::register_exception_translator([](std::exception_ptr error) {
    try {
      if (error) std::rethrow_exception(error);
    } catch (const LimitExceeded& e) {
      set_error(g_limit, e.what(), [&e](py::object& instance) {
        instance.attr("kind") = to_string(e.kind());
        instance.attr("limit") = e.limit();
      });
    } catch (const InvalidUtf8& e) {
      set_error(g_invalid_utf8, e.what(), [&e](py::object& instance) {
        instance.attr("field") = e.field();
        instance.attr("offset") = e.offset();
      });
    } catch (const TooManyChannels& e) {
      set_error(g_too_many_channels, e.what(),
                [&e](py::object& instance) { instance.attr("limit") = e.limit(); });
    } catch (const InvalidArgument& e) {
      set_error(g_invalid, e.what());
    } catch (const PayloadTooLarge& e) {
      set_error(g_too_large, e.what());
    } catch (const Closed& e) {
      set_error(g_closed, e.what());
    } catch (const Unavailable& e) {
      set_error(g_unavailable, e.what());
    } catch (const Error& e) {
      set_error(g_base, e.what());
    }
  });
}

}  // namespace sessionstream::bindings
