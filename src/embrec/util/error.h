// The one error type of embrec: library code throws it with context; cli/ prints it on one line.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace embrec {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// An error in what a caller passed in (a request's field, a fresh user's feature): a service answers it with 400
// and its message, where any other Error is its own fault (500).
class InputError : public Error {
 public:
  explicit InputError(const std::string& message) : Error(message) {}
};

// Throws Error with a fmt-formatted message, e.g. fail("{}:{}: expected 4 fields", path, line).
template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace embrec
