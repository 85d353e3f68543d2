// The subcommands of the embrec binary: demo, data prepare, train, eval.
#pragma once

#include <CLI/CLI.hpp>

namespace embrec::cli {

// Adds every subcommand to `app`; each runs from its callback (exceptions propagate to main).
void register_commands(CLI::App& app);

}  // namespace embrec::cli
