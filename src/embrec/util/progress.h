// A progress bar for long work: a redrawn line on a terminal; when not a terminal, a plain line every 15 s of a
// long step (the caller logs a line per finished step).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace embrec {

class Progress {
 public:
  // `label` prefixes the line (e.g. "epoch 3/200"), `total` is the number of steps, `unit` names what
  // `items` counts for the rate (e.g. "seq").
  Progress(std::string label, int64_t total, std::string unit);
  ~Progress();

  // Advances by `steps`, counting `items` for the rate; `status` is shown after the bar (e.g. "loss 7.8123").
  void advance(int64_t steps, int64_t items, const std::string& status);
  // Ends the line on a terminal; prints nothing otherwise.
  void finish(const std::string& status);

  double elapsed_seconds() const;
  static bool stderr_is_terminal();

  // Where every bar is written: by default stderr, redrawn in place when it is a terminal. A host such as the Python
  // module sends the text to its own stream (a notebook's, which also redraws on '\r'); an empty `write` restores
  // the default. Set it before bars are made (it is read when a bar is made, not per line).
  static void set_output(std::function<void(std::string_view)> write, bool redraw);

 private:
  void draw(const std::string& status, bool final);
  void put(const std::string& text);

  std::string label_;
  int64_t total_;
  std::string unit_;
  int64_t done_ = 0;
  int64_t items_ = 0;
  bool terminal_;  // redraw in place
  std::function<void(std::string_view)> write_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace embrec
