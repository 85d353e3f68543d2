// The message of the embrec::Error that an action throws, or "(no error)", for tests that check messages.
#pragma once

#include <functional>
#include <string>

#include "embrec/util/error.h"

namespace embrec {

inline std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& error) {
    return error.what();
  }
  return "(no error)";
}

}  // namespace embrec
