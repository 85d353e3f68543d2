// Data-parallel training (train/world.h): ranks share every batch, and two ranks reach one process' parameters.
#include "embrec/train/world.h"

#include <gtest/gtest.h>

#include <signal.h>

#include <csignal>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>

#include "embrec/data/sampler.h"
#include "embrec/models/losses/info_nce.h"
#include "embrec/train/checkpoint.h"
#include "embrec/util/net.h"
#include "embrec/train/trainer.h"
#include "train_fixtures.h"

namespace embrec::train {
namespace {

TEST(WorldTest, SharesFollowEachOtherAndCoverEveryItemOnce) {
  for (int size : {1, 2, 3, 7}) {
    for (int64_t count : {0, 1, 2, 5, 64, 65, 255}) {
      int64_t next = 0;
      for (int rank = 0; rank < size; ++rank) {
        const auto [begin, end] = share_of(count, rank, size);
        EXPECT_EQ(begin, next) << count << " items, rank " << rank << " of " << size;
        EXPECT_LE(end - begin, count / size + 1);
        EXPECT_GE(end - begin, count / size);
        next = end;
      }
      EXPECT_EQ(next, count);
    }
  }
}

TEST(WorldTest, TheRanksSharesOfAnEpochCoverEveryTrainingUserExactlyOnce) {
  Experiment experiment = experiment_from(small_config(R"(name = "sasrec"
dim = 16)", 1, 203, 50));
  data::SamplerOptions options;
  options.batch_size = 16;
  const data::SequenceSampler sampler(experiment.data.split.train, experiment.data.dataset.item_count(), options);
  for (int64_t epoch : {0, 3}) {
    std::multiset<int32_t> seen;
    for (const std::vector<int32_t>& batch : sampler.epoch_plan(epoch))
      for (int rank = 0; rank < 3; ++rank) {
        const auto [begin, end] = share_of(static_cast<int64_t>(batch.size()), rank, 3);
        seen.insert(batch.begin() + begin, batch.begin() + end);
      }
    EXPECT_EQ(static_cast<int64_t>(seen.size()), sampler.training_users());
    EXPECT_EQ(std::set<int32_t>(seen.begin(), seen.end()).size(), seen.size()) << "a user twice in epoch " << epoch;
  }
}

TEST(WorldTest, OneProcessWorldIsANoOp) {
  World world;
  EXPECT_EQ(world.size(), 1);
  EXPECT_TRUE(world.is_main());
  EXPECT_EQ(world.sum({1.5, 2.0}), (std::vector<double>{1.5, 2.0}));
  EXPECT_TRUE(world.broadcast_flag(true));
  torch::nn::Linear layer(2, 1);
  EXPECT_TRUE(world.reduce_gradients(*layer, 4, false));
  EXPECT_FALSE(world.reduce_gradients(*layer, 4, true)) << "stop asked: no step";
  world.backward(layer->forward(torch::ones({1, 2})).sum(), *layer, 1);
  EXPECT_TRUE(torch::allclose(layer->weight.grad(), torch::ones({1, 2}))) << "the plain backward pass";
}

// Runs `body(world)` as ranks 0..size-1 of one job, each a thread of this process with its own World (Gloo over
// loopback); returns each rank's error message ("" when none).
std::vector<std::string> run_ranks(int size, const std::function<void(World&)>& body) {
  const int port = free_local_port();
  std::vector<std::string> errors(size);
  std::vector<std::thread> threads;
  for (int rank = 0; rank < size; ++rank) {
    threads.emplace_back([&, rank] {
      try {
        World world(WorldSettings{rank, size, "127.0.0.1", port, 60});
        body(world);
      } catch (const std::exception& error) {
        errors[rank] = error.what();
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  return errors;
}

TEST(WorldTest, ARankOfAJobIgnoresSigpipeSoADeadPeerIsAnErrorNotADeath) {
  // With SIGPIPE's default a rank writing to a dead peer's socket was killed (exit 141) before it could say why.
  std::signal(SIGPIPE, SIG_DFL);
  std::vector<int> ignored(2, 0);  // not vector<bool>: its bits share words, and the two ranks write at once
  const std::vector<std::string> errors = run_ranks(2, [&](World& world) {
    struct sigaction now {};
    ::sigaction(SIGPIPE, nullptr, &now);
    ignored[static_cast<size_t>(world.rank())] = now.sa_handler == SIG_IGN;
    world.barrier("after checking SIGPIPE");
  });
  ASSERT_EQ(errors, (std::vector<std::string>{"", ""}));
  EXPECT_EQ(ignored, (std::vector<int>{1, 1}));
}

TEST(WorldTest, ReducedGradientsWeighEachRankByItsShareOfTheBatch) {
  std::vector<torch::Tensor> weight(2), bias(2), unused(2);
  const std::vector<std::string> errors = run_ranks(2, [&](World& world) {
    const int r = world.rank();
    torch::nn::Linear layer(2, 1);
    torch::nn::Linear never(1, 1);  // no gradient on any rank: stays without one
    torch::nn::Sequential model(layer, never);
    layer->weight.mutable_grad() = torch::tensor({{r == 0 ? 4.0f : 8.0f, 1.0f}});
    if (r == 1) layer->bias.mutable_grad() = torch::tensor({2.0f});  // rank 0 has none: counts as zero there
    // Rank 0 holds 1 sequence of the batch, rank 1 holds 3: gradient = 1/4 g0 + 3/4 g1.
    ASSERT_TRUE(world.reduce_gradients(*model, r == 0 ? 1 : 3, false));
    weight[r] = layer->weight.grad().clone();
    bias[r] = layer->bias.grad().clone();
    unused[r] = never->weight.grad();
    EXPECT_FALSE(world.reduce_gradients(*model, 2, r == 1)) << "rank 1 stops: every rank stops";
    EXPECT_TRUE(torch::equal(layer->weight.grad(), weight[r])) << "a stopped step reduces nothing";
  });
  ASSERT_EQ(errors, (std::vector<std::string>{"", ""}));
  for (int r = 0; r < 2; ++r) {
    EXPECT_TRUE(torch::allclose(weight[r], torch::tensor({{7.0f, 1.0f}}))) << weight[r];
    EXPECT_TRUE(torch::allclose(bias[r], torch::tensor({1.5f}))) << bias[r];
    EXPECT_FALSE(unused[r].defined());
  }
}

// Registered first, so its parameters come last in backward's order (and in the last bucket).
struct OverlapNet : torch::nn::Module {
  OverlapNet()
      : extra(register_module("extra", torch::nn::Linear(4, 1))),
        l1(register_module("l1", torch::nn::Linear(256, 1024))),  // a 1 MiB weight: a bucket of its own
        l2(register_module("l2", torch::nn::Linear(1024, 64))) {}
  // Mean over rows of a squared error; `with_extra` rows add a term only they use.
  torch::Tensor loss(const torch::Tensor& x, const torch::Tensor& with_extra) {
    const torch::Tensor error = (l2(torch::relu(l1(x))) - 1.0).pow(2).sum(1);
    return (error + with_extra * extra(x.narrow(1, 0, 4)).squeeze(1)).mean();
  }
  torch::nn::Linear extra, l1, l2;
};

TEST(WorldTest, BackwardSendsBucketsWhileItRunsAndReachesTheWholeBatchGradient) {
  torch::manual_seed(11);
  const torch::Tensor x = torch::randn({4, 256});
  const torch::Tensor with_extra = torch::tensor({0.0f, 1.0f, 1.0f, 1.0f});  // rank 1's rows only
  OverlapNet reference;
  reference.loss(x, with_extra).backward();
  std::vector<OverlapNet> nets(2);
  for (OverlapNet& net : nets) {
    torch::NoGradGuard no_grad;
    for (size_t p = 0; p < reference.parameters().size(); ++p) net.parameters()[p].copy_(reference.parameters()[p]);
  }
  std::vector<World::Reduction> reductions(2);
  const std::vector<std::string> errors = run_ranks(2, [&](World& world) {
    const int r = world.rank();
    // Rank 0 holds row 0 of the batch, rank 1 rows 1-3; rank 0 never uses `extra` (its gradient counts as zero).
    const int64_t begin = r == 0 ? 0 : 1, rows = r == 0 ? 1 : 3;
    OverlapNet& net = nets[r];
    for (int step = 0; step < 2; ++step) {  // the second step reuses the buckets
      net.zero_grad();
      world.backward(net.loss(x.narrow(0, begin, rows), with_extra.narrow(0, begin, rows)), net, rows);
      ASSERT_TRUE(world.reduce_gradients(net, rows, false));
    }
    reductions[r] = world.last_reduction();
  });
  ASSERT_EQ(errors, (std::vector<std::string>{"", ""}));
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(reductions[r].buckets, 2) << "rank " << r;
    EXPECT_GE(reductions[r].during_backward, 1) << "rank " << r << ": the first bucket went out during backward";
    const auto named = nets[r].named_parameters();
    for (const auto& item : reference.named_parameters()) {
      const torch::Tensor& gradient = named[item.key()].grad();
      ASSERT_TRUE(gradient.defined()) << "rank " << r << " " << item.key();
      EXPECT_TRUE(torch::allclose(gradient, item.value().grad(), 1e-4, 1e-6))
          << "rank " << r << " " << item.key() << ": largest difference "
          << (gradient - item.value().grad()).abs().max().item<float>();
    }
  }
}

// Sequences of equal length, so each rank's loss (a mean over its target positions) weighs every position as one
// process' mean over the whole batch does.
std::string equal_length_sequences(const std::string& folder) {
  std::filesystem::create_directories(folder);
  const std::string path = folder + "/sequences.txt";
  std::ofstream out(path);
  std::mt19937 random(5);
  std::uniform_int_distribution<int> item(1, 40);
  for (int user = 1; user <= 48; ++user) {
    out << user;
    std::set<int> used;
    while (used.size() < 12) {
      const int next = item(random);
      if (used.insert(next).second) out << ' ' << next;
    }
    out << '\n';
  }
  return path;
}

// A small SASRec encoder without dropout (S4Rec shares these keys).
const char* const kEncoderKeys = R"(dim = 16
layers = 1
heads = 1
max_length = 12
dropout = 0.0
attention_dropout = 0.0
loss = "softmax"
)";

std::string sasrec_config(const std::string& data_path) {
  return fmt::format(R"(
[data]
path = "{}"
format = "seq"
[data.split]
method = "leave_one_out"
[model]
name = "sasrec"
{}[train]
epochs = 3
batch_size = 8
threads = 1
length_bucketing = false
eval_every = 1
patience = 100
seed = 3
[eval]
ks = [10]
metrics = ["ndcg"]
select = "ndcg@10"
)",
                     data_path, kEncoderKeys);
}

std::vector<torch::Tensor> parameters_of(Experiment& experiment) {
  std::vector<torch::Tensor> out;
  for (const torch::Tensor& parameter : experiment.model->module().parameters()) out.push_back(parameter.detach().clone());
  return out;
}

TEST(WorldTest, TwoRanksReachTheParametersOfOneProcessOnTheSameGlobalBatches) {
  const std::string folder = temporary_folder("world-equal");
  const std::string config = sasrec_config(equal_length_sequences(folder));

  Experiment alone = experiment_from(config);
  train(alone, {folder + "/one", false, -1});

  // The two ranks as two threads of this process, each with its own experiment and model.
  std::vector<Experiment> ranks;
  for (int rank = 0; rank < 2; ++rank) ranks.push_back(experiment_from(config));
  const std::vector<std::string> errors = run_ranks(2, [&](World& world) {
    TrainOptions options{folder + "/two", false, -1};
    options.world = &world;
    train(ranks[world.rank()], options);
  });
  ASSERT_EQ(errors, (std::vector<std::string>{"", ""}));

  // The last epoch's parameters: each run's checkpoint.pt (rank 0 wrote the job's), and rank 1's model as it ended
  // (rank 0's model holds best.pt after the results).
  const auto last_epoch = [&](const std::string& run) {
    Experiment fresh = experiment_from(config);
    load_checkpoint(fresh.model->module(), nullptr, run + "/checkpoint.pt");
    return parameters_of(fresh);
  };
  const std::vector<torch::Tensor> expected = last_epoch(folder + "/one");
  const std::vector<torch::Tensor> job = last_epoch(folder + "/two");
  const std::vector<torch::Tensor> rank_one = parameters_of(ranks[1]);
  ASSERT_EQ(job.size(), expected.size());
  ASSERT_EQ(rank_one.size(), expected.size());
  for (size_t p = 0; p < expected.size(); ++p) {
    EXPECT_TRUE(torch::allclose(job[p], expected[p], 1e-4, 1e-5))
        << "parameter " << p << ": largest difference " << (job[p] - expected[p]).abs().max().item<float>();
    EXPECT_TRUE(torch::equal(job[p], rank_one[p])) << "rank 1 applied other gradients than rank 0, parameter " << p;
  }
  Experiment initial = experiment_from(config);
  EXPECT_FALSE(torch::allclose(expected[0], parameters_of(initial)[0], 1e-3, 1e-3)) << "nothing was trained";
  EXPECT_TRUE(std::filesystem::exists(folder + "/two/results.json")) << "rank 0 writes the results";
  // One metrics line per epoch, written once (by rank 0), counting each training sequence once over the ranks.
  const auto sequences = [](const std::string& run) {
    std::vector<int64_t> out;
    std::ifstream metrics(run + "/metrics.jsonl");
    for (std::string line; std::getline(metrics, line);) out.push_back(nlohmann::json::parse(line).at("sequences"));
    return out;
  };
  EXPECT_EQ(sequences(folder + "/two"), sequences(folder + "/one"));
  EXPECT_EQ(sequences(folder + "/one"), (std::vector<int64_t>{48, 48, 48}));
  std::filesystem::remove_all(folder);
}

TEST(WorldTest, GatheredInfoNceOverRanksEqualsOneProcessOnTheWholeBatch) {
  torch::manual_seed(1);
  const torch::Tensor anchors = torch::randn({7, 5}), positives = torch::randn({7, 5});
  const torch::Tensor groups = torch::tensor({0, 1, 0, 2, 1, 1, 0});
  const torch::Tensor false_negatives = groups.unsqueeze(1).eq(groups.unsqueeze(0));  // e.g. ICLRec's same intent
  for (bool anchor_negatives : {true, false}) {
    models::losses::InfoNceOptions options;
    options.temperature = 0.5;
    options.anchor_negatives = anchor_negatives;
    const double whole = models::losses::info_nce(anchors, positives, options, {}, {}, false_negatives).item<double>();
    std::vector<double> weighted(3);
    const std::vector<std::string> errors = run_ranks(3, [&](World& world) {
      const auto [begin, end] = world.share(7);
      models::losses::InfoNceOptions local = options;
      local.gather = [&world](const torch::Tensor& rows) { return world.gather(rows); };
      const torch::Tensor loss = models::losses::info_nce(anchors.slice(0, begin, end), positives.slice(0, begin, end), local,
                                                  {}, {}, false_negatives.slice(0, begin, end));
      weighted[world.rank()] = loss.item<double>() * static_cast<double>(end - begin) / 7.0;
    });
    ASSERT_EQ(errors, (std::vector<std::string>{"", "", ""}));
    EXPECT_NEAR(weighted[0] + weighted[1] + weighted[2], whole, 1e-5) << "anchor negatives " << anchor_negatives;
  }
}

// The `parts` named loss parts of the model `model_table` ([model] keys) on the first batch of 16 users of the equal-length
// sequences: one process on the whole batch, and 2 ranks on their shares (same weights, the batch gathered). Each
// rank's parts weighed by its share of the sequences must add up to one process' parts.
void expect_gathered_loss_equals_one_process(const std::string& model_table, const std::string& name, size_t parts) {
  const std::string folder = temporary_folder("world-" + name);
  std::string config = sasrec_config(equal_length_sequences(folder));
  const size_t model = config.find("[model]"), train_table = config.find("[train]");
  config.replace(model, train_table - model, "[model]\n" + model_table + "\n");
  Experiment one = experiment_from(config);
  one.model->fit(one.data.split);  // e.g. the augmentations' item pool
  std::vector<Experiment> ranks;
  for (int rank = 0; rank < 2; ++rank) {
    ranks.push_back(experiment_from(config));
    ranks.back().model->fit(ranks.back().data.split);
  }
  {
    torch::NoGradGuard no_grad;  // the same weights everywhere
    for (Experiment& rank : ranks) {
      auto source = one.model->module().parameters(), target = rank.model->module().parameters();
      for (size_t p = 0; p < source.size(); ++p) target[p].copy_(source[p]);
    }
  }
  data::SamplerOptions defaults;
  defaults.batch_size = 16;
  const data::SamplerOptions options = one.model->sampler_options(defaults);
  const data::SequenceSampler sampler(one.data.split.train, one.data.dataset.item_count(), options);
  const std::vector<int32_t> users = sampler.epoch_plan(0).front();
  ASSERT_EQ(users.size(), 16u);
  const auto loss_of = [&](Experiment& experiment, const std::vector<int32_t>& rows, int64_t first_row,
                           const models::BatchGather& gather) {
    data::SequenceBatch batch;
    sampler.fill(rows, 0, 0, batch);
    models::TensorBatch tensors = models::tensor_batch(batch, options.max_length, torch::kCPU);
    tensors.first_row = first_row;
    tensors.gather = gather;
    experiment.model->module().train();
    std::map<std::string, double> parts;
    for (const auto& [part, value] : experiment.model->loss(tensors).parts) parts[part] = value.item<double>();
    return parts;
  };
  const std::map<std::string, double> whole = loss_of(one, users, 0, {});
  std::vector<std::map<std::string, double>> shares(2);
  const std::vector<std::string> errors = run_ranks(2, [&](World& world) {
    const auto [begin, end] = world.share(16);
    shares[world.rank()] = loss_of(ranks[world.rank()], std::vector<int32_t>(users.begin() + begin, users.begin() + end),
                                   begin, [&world](const torch::Tensor& rows) { return world.gather(rows); });
  });
  ASSERT_EQ(errors, (std::vector<std::string>{"", ""}));
  ASSERT_EQ(whole.size(), parts) << name;
  for (const auto& [part, value] : whole)
    EXPECT_NEAR(0.5 * shares[0].at(part) + 0.5 * shares[1].at(part), value, 1e-4) << name << ": " << part;
  std::filesystem::remove_all(folder);
}

TEST(WorldTest, GatheredS4recLossEqualsOneProcessLossOnTheSameBatch) {
  // Sinkhorn's equipartition, the sequence contrast and the distillation see the whole batch on every rank.
  expect_gathered_loss_equals_one_process(std::string("name = \"s4rec\"\n") + kEncoderKeys + "clusters = 4\nlambda = 0.0",
                                          "s4rec", 4);  // sr, clust, scl, ckd
}

TEST(WorldTest, GatheredDssrecLossEqualsOneProcessLossOnTheSameBatch) {
  // The seq2seq loss's negatives and its confident pairs are chosen over the whole batch on every rank.
  expect_gathered_loss_equals_one_process(std::string("name = \"dssrec\"\n") + kEncoderKeys + "intentions = 2",
                                          "dssrec", 2);  // sr, seq2seq
}

TEST(WorldTest, IclrecKmeansOfTheRanksSharesEqualsOneProcessAndReachesEveryRank) {
  // Each rank encodes its share of the users; rank 0 clusters them all once and broadcasts the centroids.
  const std::string folder = temporary_folder("world-kmeans");
  std::string config = sasrec_config(equal_length_sequences(folder));
  const size_t model = config.find("[model]"), train_table = config.find("[train]");
  config.replace(model, train_table - model,
                 std::string("[model]\nname = \"s4rec\"\n") + kEncoderKeys +
                     "clusters = 4\nclustering = \"kmeans\"\nalpha = 0.0\nbeta2 = 0.0\nlambda = 0.0\n"
                     "icl_weight = 0.1\nprototype_negatives = false\n");
  auto prototypes_of = [](Experiment& experiment) {
    const torch::Tensor* prototypes = experiment.model->module().named_buffers().find("centroids");
    if (prototypes == nullptr) ADD_FAILURE() << "no centroids buffer";
    return prototypes ? prototypes->clone() : torch::Tensor();
  };
  Experiment one = experiment_from(config);
  one.model->fit(one.data.split);
  const torch::Tensor before = prototypes_of(one);
  one.model->begin_epoch(0);
  const torch::Tensor expected = prototypes_of(one);
  ASSERT_FALSE(torch::allclose(before, expected)) << "k-means left the prototypes as they were";

  std::vector<Experiment> ranks;
  for (int rank = 0; rank < 2; ++rank) {
    ranks.push_back(experiment_from(config));
    ranks.back().model->fit(ranks.back().data.split);
    torch::NoGradGuard no_grad;
    auto source = one.model->module().parameters(), target = ranks.back().model->module().parameters();
    for (size_t p = 0; p < source.size(); ++p) target[p].copy_(source[p]);
  }
  std::vector<torch::Tensor> got(2);
  const std::vector<std::string> errors = run_ranks(2, [&](World& world) {
    ranks[world.rank()].model->begin_epoch(0, world.epoch_world());
    got[world.rank()] = prototypes_of(ranks[world.rank()]);
  });
  ASSERT_EQ(errors, (std::vector<std::string>{"", ""}));
  EXPECT_TRUE(torch::allclose(got[0], expected, 1e-4, 1e-5)) << got[0] - expected;
  EXPECT_TRUE(torch::equal(got[1], got[0])) << "rank 1 did not receive rank 0's centroids";
  std::filesystem::remove_all(folder);
}

TEST(WorldTest, GatheredInBatchSoftmaxEqualsOneProcessLossOnTheSameBatch) {
  // 160 pairs in softmaxes of at most 64: the chunks are drawn over the whole batch's pairs, whichever rank holds them.
  const std::string two_tower =
      "name = \"two_tower\"\ndim = 16\nembedding_dim = 16\nhidden = []\ntemperature = 0.2\nmax_pairs = 64\n";
  expect_gathered_loss_equals_one_process(two_tower + "logq = \"counts\"", "two_tower", 1);
  expect_gathered_loss_equals_one_process(two_tower + "logq = \"streaming\"\nssl_weight = 0.1", "two_tower_ssl", 2);
  // GRU4Rec's sampled losses take the whole batch's distinct targets as negatives (a window of 3: each half of
  // the batch holds only some of the 40 items; init_range 1: at the default start every score is ~0 and BPR-max
  // does not depend on which negatives it sees).
  expect_gathered_loss_equals_one_process(
      "name = \"gru4rec\"\ndim = 16\nmax_length = 3\nbatching = \"padded\"\nloss = \"bpr_max\"\n"
      "embedding_dropout = 0.0\nhidden_dropout = 0.0\ninit_range = 1.0",
      "gru4rec", 1);
  expect_gathered_loss_equals_one_process(R"(name = "mf"
loss = "softmax"
similarity = "cosine"
negatives = "in_batch"
temperature = 0.2
dim = 16
max_pairs = 64)", "mf", 1);
}

}  // namespace
}  // namespace embrec::train
