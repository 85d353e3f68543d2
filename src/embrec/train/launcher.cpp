#include "embrec/train/launcher.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <thread>

#include "embrec/util/error.h"
#include "embrec/util/net.h"

extern char** environ;

namespace embrec::train {

namespace {

// This process' environment without the variables a rank is given, plus those.
std::vector<std::string> rank_environment(int rank, int nproc, int port) {
  const char* kSet[] = {"RANK=", "WORLD_SIZE=", "LOCAL_RANK=", "LOCAL_WORLD_SIZE=", "MASTER_ADDR=", "MASTER_PORT="};
  std::vector<std::string> environment;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    bool replaced = false;
    for (const char* name : kSet) replaced = replaced || std::strncmp(*entry, name, std::strlen(name)) == 0;
    if (!replaced) environment.emplace_back(*entry);
  }
  environment.push_back(fmt::format("RANK={}", rank));
  environment.push_back(fmt::format("LOCAL_RANK={}", rank));
  environment.push_back(fmt::format("WORLD_SIZE={}", nproc));
  environment.push_back(fmt::format("LOCAL_WORLD_SIZE={}", nproc));
  environment.push_back("MASTER_ADDR=127.0.0.1");
  environment.push_back(fmt::format("MASTER_PORT={}", port));
  return environment;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (std::string& text : strings) out.push_back(text.data());
  out.push_back(nullptr);
  return out;
}

std::string describe(int status) {
  if (WIFSIGNALED(status)) return fmt::format("was killed by signal {} ({})", WTERMSIG(status), strsignal(WTERMSIG(status)));
  return fmt::format("exited with status {}", WEXITSTATUS(status));
}

int exit_code(int status) { return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status); }

}  // namespace

std::vector<std::string> own_arguments() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> arguments;
  size_t start = 0;
  while (start < text.size()) {
    const size_t end = text.find('\0', start);
    arguments.push_back(text.substr(start, end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return arguments;
}

int run_local_ranks(int nproc, const std::vector<std::string>& arguments) {
  if (nproc < 1) fail("--nproc must be at least 1, not {}", nproc);
  const int port = free_local_port();
  std::vector<std::string> argv_strings = {"/proc/self/exe"};
  argv_strings.insert(argv_strings.end(), arguments.begin(), arguments.end());
  std::vector<char*> argv = pointers(argv_strings);
  std::vector<pid_t> ranks;
  using Handler = void (*)(int);
  const Handler previous_interrupt = std::signal(SIGINT, SIG_IGN);
  const auto stop_all = [&ranks] {
    for (pid_t pid : ranks)
      if (pid > 0) ::kill(pid, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (pid_t& pid : ranks) {
      while (pid > 0) {
        int status = 0;
        if (::waitpid(pid, &status, WNOHANG) == pid) {
          pid = 0;
        } else if (std::chrono::steady_clock::now() > deadline) {
          ::kill(pid, SIGKILL);
          ::waitpid(pid, &status, 0);
          pid = 0;
        } else {
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
      }
    }
  };
  for (int rank = 0; rank < nproc; ++rank) {
    std::vector<std::string> environment_strings = rank_environment(rank, nproc, port);
    std::vector<char*> environment = pointers(environment_strings);
    // The ranks must not inherit the launcher's "ignore Ctrl-C".
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    sigset_t defaults;
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGINT);
    posix_spawnattr_setsigdefault(&attributes, &defaults);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGDEF);
    pid_t pid = 0;
    const int error = ::posix_spawn(&pid, "/proc/self/exe", nullptr, &attributes, argv.data(), environment.data());
    posix_spawnattr_destroy(&attributes);
    if (error != 0) {
      stop_all();
      std::signal(SIGINT, previous_interrupt);
      fail("--nproc: cannot start rank {}: {}", rank, std::strerror(error));
    }
    ranks.push_back(pid);
  }
  // 130 is a rank stopped by Ctrl-C: the others stop at the same batch, so wait for them rather than kill them.
  constexpr int kInterrupted = 130;
  int result = 0;
  const auto running = [&ranks] {
    for (pid_t pid : ranks)
      if (pid > 0) return true;
    return false;
  };
  while (running()) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0) break;
    for (int rank = 0; rank < nproc; ++rank) {
      if (ranks[rank] != pid) continue;
      ranks[rank] = 0;
      if (status == 0) break;
      if (WIFEXITED(status) && WEXITSTATUS(status) == kInterrupted) {
        result = kInterrupted;
        break;
      }
      std::fprintf(stderr, "embrec: rank %d of %d %s; stopping the other ranks\n", rank, nproc, describe(status).c_str());
      stop_all();
      std::signal(SIGINT, previous_interrupt);
      return exit_code(status);
    }
  }
  std::signal(SIGINT, previous_interrupt);
  return result;
}

}  // namespace embrec::train
