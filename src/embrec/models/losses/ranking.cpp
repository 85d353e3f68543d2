// The sampled ranking losses, written with masks so each row may have its own set of negatives.
#include "embrec/models/losses/ranking.h"

#include <limits>

namespace embrec::models::losses {

torch::Tensor ranking_loss(RankingLoss loss, const torch::Tensor& positive_in, const torch::Tensor& negatives_in,
                           const torch::Tensor& valid_in, double regularization) {
  auto rows = valid_in.any(1).nonzero().squeeze(1);
  auto positive = positive_in.index_select(0, rows).unsqueeze(1);  // [R, 1]
  auto negatives = negatives_in.index_select(0, rows);             // [R, C]
  auto valid = valid_in.index_select(0, rows);
  if (rows.numel() == 0) return negatives_in.sum() * 0.0;  // nothing to rank; keeps the graph
  auto weight = valid.to(negatives.scalar_type());
  switch (loss) {
    case RankingLoss::Bpr: {
      // log sigmoid(x) = -softplus(-x)
      auto per_pair = torch::softplus(negatives - positive);
      return ((per_pair * weight).sum(1) / weight.sum(1)).mean();
    }
    case RankingLoss::Top1: {
      auto per_pair = torch::sigmoid(negatives - positive) + torch::sigmoid(negatives.square());
      return ((per_pair * weight).sum(1) / weight.sum(1)).mean();
    }
    case RankingLoss::BprMax: {
      // log sum_j s_j sigmoid(r_i - r_j) = logsumexp_j(log s_j + log sigmoid(r_i - r_j)), stable where s_j is tiny.
      const double minus_infinity = -std::numeric_limits<double>::infinity();
      auto log_s = torch::log_softmax(negatives.masked_fill(valid.logical_not(), minus_infinity), 1);
      auto terms = (log_s - torch::softplus(negatives - positive)).masked_fill(valid.logical_not(), minus_infinity);
      auto ranking = -torch::logsumexp(terms, 1);
      auto penalty = (log_s.exp() * negatives.square()).masked_fill(valid.logical_not(), 0.0).sum(1);
      return (ranking + regularization * penalty).mean();
    }
    case RankingLoss::Top1Max: {
      auto s = torch::softmax(negatives.masked_fill(valid.logical_not(), -std::numeric_limits<double>::infinity()), 1);
      auto per_pair = torch::sigmoid(negatives - positive) + torch::sigmoid(negatives.square());
      return (s * per_pair).masked_fill(valid.logical_not(), 0.0).sum(1).mean();
    }
  }
  return {};
}

}  // namespace embrec::models::losses
