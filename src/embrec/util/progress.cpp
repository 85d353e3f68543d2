// Progress bar: redraws at most 10 times a second on a terminal; writes a line per 10 % to logs otherwise.
#include "embrec/util/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

namespace embrec {

namespace {
struct Output {
  std::function<void(std::string_view)> write;
  bool redraw = false;
};
Output& output() {
  static Output instance;
  return instance;
}
}  // namespace

void Progress::set_output(std::function<void(std::string_view)> write, bool redraw) {
  output().write = std::move(write);
  output().redraw = redraw;
}

Progress::Progress(std::string label, int64_t total, std::string unit)
    : label_(std::move(label)),
      total_(total > 0 ? total : 1),
      unit_(std::move(unit)),
      terminal_(output().write ? output().redraw : stderr_is_terminal()),
      write_(output().write),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() {
  if (!finished_ && terminal_) put("\n");
}

bool Progress::stderr_is_terminal() { return ::isatty(::fileno(stderr)) == 1; }

double Progress::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::advance(int64_t steps, int64_t items, const std::string& status) {
  done_ += steps;
  items_ += items;
  const auto now = std::chrono::steady_clock::now();
  if (terminal_) {
    if (now - last_draw_ < std::chrono::milliseconds(100) && done_ < total_) return;
    last_draw_ = now;
    draw(status, false);
  } else if (now - last_draw_ >= std::chrono::seconds(15) && done_ < total_) {
    // Logs get a line every 15 s of a long step, nothing for short ones: the caller logs each finished step.
    last_draw_ = now;
    draw(status, false);
  }
}

void Progress::finish(const std::string& status) {
  if (finished_) return;
  finished_ = true;
  if (terminal_) draw(status, true);
}

void Progress::draw(const std::string& status, bool final) {
  const double seconds = elapsed_seconds();
  const double rate = seconds > 0 ? items_ / seconds : 0.0;
  const double fraction = static_cast<double>(done_) / total_;
  const double eta = fraction > 0 ? seconds * (1 - fraction) / fraction : 0.0;
  std::string line;
  if (terminal_) {
    constexpr int kWidth = 24;
    const int filled = static_cast<int>(fraction * kWidth + 0.5);
    line = fmt::format("\r{} [{}{}] {}/{} {} {:.0f} {}/s {}", label_, std::string(filled, '#'),
                       std::string(kWidth - filled, '.'), done_, total_, status, rate, unit_,
                       final ? fmt::format("{:.1f}s", seconds) : fmt::format("ETA {:.0f}s", eta));
    line += "\x1b[K";
    if (final) line += "\n";
  } else {
    line = fmt::format("{} {}/{} ({:.0f}%) {} {:.0f} {}/s {}\n", label_, done_, total_, 100 * fraction, status, rate,
                       unit_, final ? fmt::format("{:.1f}s", seconds) : fmt::format("ETA {:.0f}s", eta));
  }
  put(line);
}

void Progress::put(const std::string& text) {
  if (write_) {
    write_(text);
    return;
  }
  std::fputs(text.c_str(), stderr);
  std::fflush(stderr);
}

}  // namespace embrec
