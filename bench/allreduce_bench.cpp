// Gloo all-reduce on loopback through embrec's World (LibTorch c10d): seconds per all-reduce of a float32 gradient
// of 0.25 to 64 MiB between 2 ranks, and the bandwidth it implies (bytes of the gradient / seconds), for the
// all-reduce cost in docs/scale.md. The ranks are two threads of this process, each with its own World and TCP
// connections over 127.0.0.1, as two local processes would have.
//
//   build/bench/bench_allreduce [--ranks 2] [--repeats 20]
#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "embrec/train/world.h"
#include "embrec/util/net.h"

int main(int argc, char** argv) {
  int ranks = 2, repeats = 20;
  for (int a = 1; a + 1 < argc; a += 2) {
    const std::string flag = argv[a];
    if (flag == "--ranks") ranks = std::stoi(argv[a + 1]);
    else if (flag == "--repeats") repeats = std::stoi(argv[a + 1]);
    else {
      fmt::print(stderr, "bench_allreduce: unknown flag {} (--ranks N, --repeats N)\n", flag);
      return 2;
    }
  }
  torch::set_num_threads(1);
  const int port = embrec::free_local_port();
  const std::vector<int64_t> sizes_kib = {256, 1024, 4096, 16384, 65536};
  std::vector<std::vector<double>> seconds(sizes_kib.size());  // rank 0's median per size
  std::vector<std::thread> threads;
  for (int rank = 0; rank < ranks; ++rank) {
    threads.emplace_back([&, rank] {
      embrec::train::World world(embrec::train::WorldSettings{rank, ranks, "127.0.0.1", port, 120});
      for (size_t s = 0; s < sizes_kib.size(); ++s) {
        // One linear layer whose weight is the whole gradient: reduce_gradients as the trainer calls it.
        const int64_t floats = sizes_kib[s] * 1024 / 4;
        torch::nn::Linear layer(torch::nn::LinearOptions(floats, 1).bias(false));
        std::vector<double> times;
        for (int r = 0; r < repeats + 2; ++r) {
          layer->weight.mutable_grad() = torch::ones_like(layer->weight);
          world.barrier("before an all-reduce");
          const auto start = std::chrono::steady_clock::now();
          world.reduce_gradients(*layer, 1, false);
          const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          if (r >= 2) times.push_back(elapsed);  // the first two warm the connections and buffers
        }
        std::sort(times.begin(), times.end());
        if (rank == 0) seconds[s] = times;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  fmt::print("| gradient | ranks | median ms per all-reduce | min ms | MB/s (gradient bytes / median) |\n");
  fmt::print("|---|---|---|---|---|\n");
  for (size_t s = 0; s < sizes_kib.size(); ++s) {
    const std::vector<double>& t = seconds[s];
    const double median = t[t.size() / 2];
    fmt::print("| {:.2f} MiB | {} | {:.2f} | {:.2f} | {:.0f} |\n", sizes_kib[s] / 1024.0, ranks, 1e3 * median,
               1e3 * t.front(), sizes_kib[s] * 1024.0 / median / 1e6);
  }
  return 0;
}
