// How two vectors are compared, shared by the losses and models that offer both (InfoNCE, MF's softmax).
#pragma once

#include "embrec/util/config.h"

namespace embrec::models {

// "dot": raw inner products; "cosine": both vectors L2-normalised first.
enum class Similarity { Dot, Cosine };
inline const Names<Similarity> kSimilarityNames = {{"dot", Similarity::Dot}, {"cosine", Similarity::Cosine}};

}  // namespace embrec::models
