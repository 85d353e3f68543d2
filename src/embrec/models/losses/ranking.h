// GRU4Rec's sampled ranking losses (Hidasi et al., ICLR 2016; Hidasi & Karatzoglou, CIKM 2018 "Recurrent Neural
// Networks with Top-k Gains"), on each row's positive score r_i and its negatives' scores r_j:
//   BPR       -1/N_S sum_j log sigmoid(r_i - r_j)
//   TOP1       1/N_S sum_j [sigmoid(r_j - r_i) + sigmoid(r_j^2)]
//   BPR-max   -log sum_j s_j sigmoid(r_i - r_j) + lambda sum_j s_j r_j^2,   s = softmax of the negatives' scores
//   TOP1-max   sum_j s_j [sigmoid(r_j - r_i) + sigmoid(r_j^2)]
// averaged over rows. Rows without any negative are left out.
#pragma once

#include <torch/torch.h>

#include "embrec/util/config.h"

namespace embrec::models::losses {

enum class RankingLoss { Bpr, Top1, BprMax, Top1Max };
inline const Names<RankingLoss> kRankingLossNames = {{"bpr", RankingLoss::Bpr},
                                                     {"top1", RankingLoss::Top1},
                                                     {"bpr_max", RankingLoss::BprMax},
                                                     {"top1_max", RankingLoss::Top1Max}};

// positive [R], negatives [R, C], valid [R, C] bool (false: not a negative of that row, e.g. its own target).
// regularization is BPR-max's lambda (the others ignore it). Differentiable in positive and negatives.
torch::Tensor ranking_loss(RankingLoss loss, const torch::Tensor& positive, const torch::Tensor& negatives,
                           const torch::Tensor& valid, double regularization = 1.0);

}  // namespace embrec::models::losses
