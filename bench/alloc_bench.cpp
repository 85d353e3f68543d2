// The page-fault cost of fresh large temporaries, with whichever malloc this binary is linked against:
// bench_alloc_tcmalloc (gperftools tcmalloc) vs bench_alloc_glibc. Same code, two links.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

// A Beauty-sized softmax step done the plain autograd way: [1500 x 12101] logits (73 MB) and their softmax
// gradient are fresh buffers every iteration.
static void UnfusedSoftmaxStep(benchmark::State& state) {
  torch::set_num_threads(static_cast<int>(state.range(0)));
  torch::manual_seed(0);
  auto hidden = torch::randn({1500, 64}).requires_grad_(true);
  auto weight = torch::randn({12101, 64}).requires_grad_(true);
  auto targets = torch::randint(0, 12101, {1500}, torch::kLong);
  for (auto _ : state) {
    auto loss = torch::nn::functional::cross_entropy(hidden.mm(weight.t()), targets);
    loss.backward();
    hidden.mutable_grad().zero_();
    weight.mutable_grad().zero_();
    benchmark::DoNotOptimize(loss.item<float>());
  }
}
BENCHMARK(UnfusedSoftmaxStep)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->MinTime(3.0);

// Fresh 16 MB tensors (below glibc's 32 MB mmap threshold ceiling) filled once each.
static void FreshMediumTensor(benchmark::State& state) {
  torch::set_num_threads(1);
  for (auto _ : state) {
    auto buffer = torch::empty({4 << 20});
    buffer.fill_(1.0f);
    benchmark::DoNotOptimize(buffer.data_ptr<float>());
  }
}
BENCHMARK(FreshMediumTensor)->Unit(benchmark::kMillisecond)->MinTime(2.0);

BENCHMARK_MAIN();
