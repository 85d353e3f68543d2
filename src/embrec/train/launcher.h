// `embrec train --nproc N`: N local ranks of one data-parallel job, each a copy of this program started with
// torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT; see train/world.h). The launcher
// only starts and watches them: a rank that fails or is killed stops the others at once, and the job's exit status
// is the first failure's.
#pragma once

#include <string>
#include <vector>

namespace embrec::train {

// This process' command line (argv[0] first), read from /proc/self/cmdline.
std::vector<std::string> own_arguments();

// Runs `arguments` (argv[1..]; the program is this executable) as ranks 0..nproc-1 on 127.0.0.1 and a free port, and
// waits for them. Returns 0 when every rank exits 0; otherwise stops the other ranks (SIGTERM, then SIGKILL after
// 10 s), says which rank failed how, and returns its exit status (128 + signal when killed by one). The launcher
// ignores Ctrl-C: the ranks, in the same terminal, get it and stop together.
int run_local_ranks(int nproc, const std::vector<std::string>& arguments);

}  // namespace embrec::train
