// `embrec <command>`: parse, load config, call the library, print. Errors become one line and a non-zero exit.
#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <filesystem>
#include <iostream>

#include "embrec/cli/commands.h"
#include "embrec/util/allocator.h"
#include "embrec/util/error.h"

int main(int argc, char** argv) {
  // Logs go to stderr; stdout carries only results (tables), so they can be piped.
  spdlog::set_default_logger(spdlog::stderr_color_mt("embrec"));
  spdlog::set_pattern("[%H:%M:%S] %v");

  embrec::tune_allocator();
  CLI::App app{"embrec: embedding-based recommendation, from interaction logs to a serving endpoint"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "embrec 0.1.0");
  embrec::cli::register_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error);
  } catch (const embrec::Error& error) {
    std::fprintf(stderr, "embrec: error: %s\n", error.what());
    return 1;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "embrec: internal error: %s\n", error.what());
    return 2;
  }
  return 0;
}
