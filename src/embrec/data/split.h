// Splits, all seeded and deterministic: leave-one-out by time (the SASRec/ICLRec/S4Rec protocol), per-user
// chronological ratio, per-user stratified random ratio (Microsoft Recommenders' 75/25), global random.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "embrec/data/dataset.h"
#include "embrec/util/config.h"

namespace embrec::data {

enum class SplitMethod { LeaveOneOut, Chrono, Stratified, Random, User };
inline const Names<SplitMethod> kSplitMethodNames = {{"leave_one_out", SplitMethod::LeaveOneOut},
                                                     {"chrono", SplitMethod::Chrono},
                                                     {"stratified", SplitMethod::Stratified},
                                                     {"random", SplitMethod::Random},
                                                     {"user", SplitMethod::User}};
// chrono / stratified: the groups whose interactions are split by the ratios: each user's, or each item's (as
// Microsoft Recommenders' filter_by; its benchmark notebook splits ML-100K by item).
enum class StratifyBy { User, Item };
inline const Names<StratifyBy> kStratifyByNames = {{"user", StratifyBy::User}, {"item", StratifyBy::Item}};

struct SplitOptions {
  SplitMethod method = SplitMethod::LeaveOneOut;
  double train_ratio = 0.75;              // chrono / stratified / random: share of interactions in train
  double valid_ratio = 0.0;               // chrono / stratified / random: share carved out of train for valid
  uint64_t seed = 42;
  StratifyBy stratify_by = StratifyBy::User;
  // chrono / stratified / random: drop test (and valid) interactions whose item never occurs in train, as
  // Microsoft Recommenders does (users without train interactions have no history, so theirs are dropped too).
  bool drop_unseen = true;
  // user: shares of users in train, valid and test (summing to 1), and the share of each valid or test user's
  // time-ordered sequence that is their input (the rest are their targets).
  std::vector<double> user_ratios = {0.8, 0.1, 0.1};
  double input_ratio = 0.8;
  // Cold-start items: this share of the items (drawn uniformly with `seed`) is held out entirely. Their
  // interactions are taken out of every user's sequence before the split is made (so the split and training see
  // only the others) and kept as Split::cold, the targets of the cold-start stage (make_cold_task). 0 = none.
  double cold_item_ratio = 0.0;
};

// What is wrong with user_ratios (": must be ..."), or "" when they are three shares >= 0 that sum to 1.
std::string user_ratios_problem(const std::vector<double>& ratios);

// leave_one_out: per user, the last interaction is test, the second-last valid, the rest train; users with fewer
// than 3 interactions keep everything in train (no targets). Other methods are documented in split.cpp.
Split make_split(const Dataset& dataset, const SplitOptions& options);

}  // namespace embrec::data
