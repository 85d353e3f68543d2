// A seeded generator of MIND-format data (news.tsv and behaviors.tsv of a train and a dev folder, like MINDsmall_train
// and MINDsmall_dev) with signal a news model can learn, so that models, tests and demos run without downloads.
//
// The generative process, in order (every draw from one std::mt19937_64 seeded with `seed`):
//  1. Words. A common vocabulary (English function words, then made-up words) shared by all news, and per topic its
//     own made-up words. Within each list a word's frequency falls as 1 / rank (Zipf).
//  2. Topics. Topic t is one category (news, sports, finance, ...) with `subcategories_per_topic` subcategories
//     ("sports_1", ...); topic t's share of news and of users' interests is proportional to 1 / (t + 1)^0.7.
//  3. News. Publication times are uniform over the history window and the impression days; ids N1, N2, ... follow
//     publication order. Each news item has a topic (by popularity), a subcategory (uniform within the topic), an
//     appeal ~ Normal(0, appeal_stddev) (some stories are simply more clickable), a title of 5-15 words (each from
//     the topic's words with probability topic_word_share, else a common word; the first capitalised, occasional
//     commas, some end in '?' or '!') and a 10-30 word abstract made the same way.
//  4. Users. Each holds 1-3 topics (by popularity) with random weights, plus background_interest spread over all
//     topics: interest_u(t0)[topic]. Interest drifts linearly toward one other topic: at time t,
//     interest_u(t) = (1 - λ) interest_u(t0) + λ onehot(drift topic), λ = drift * (t - t0) / (t_end - t0).
//  5. Clicks. Shown a slate at time t, a user clicks news i with weight
//        w_i = interest_u(t)[topic_i]^topic_sharpness * exp(recency_weight * (1 - age_i / recent) + appeal_i),
//     c clicks drawn without replacement in proportion to w (Gumbel top-c). Recent = recent_days.
//  6. Histories. history_days of clicks before the first impression day: each click at a uniform time, chosen
//     from a slate of up to 20 news published in the `recent` window before it; no news twice; written oldest
//     first, and the same history in each of the user's impressions (as MIND does). empty_history_share of users
//     have none (MIND has such users too).
//  7. Impressions. Per user and day, Poisson(impressions_per_user_day) impressions at uniform times of the day; the
//     candidates are 5-30 news published in the `recent` window before it (none of the user's history), shown in
//     random order; 1 click, then each further click with probability extra_click_probability, at least one
//     candidate left unclicked (so every impression's AUC is defined).
//  8. Files. Impressions of the last dev_days days go to dev/, the others to train/, each in time order with
//     impression ids from 1; each folder's news.tsv holds the news its behaviors.tsv refers to (histories and
//     candidates), so dev has news never seen in train, as MIND does. Times are written as MIND writes them
//     ("11/15/2019 8:55:22 AM", UTC); URL and entity columns are placeholders ("[]" entities).
// Uniform draws are computed from the raw 64-bit outputs, not std:: distributions, so the files are identical on
// every standard library.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace embrec::data {

// Defaults are sized for a test (under a second to generate); mind_demo_options() is the demo's size.
struct MindGeneratorOptions {
  int32_t users = 500;
  int32_t news = 2000;
  int32_t days = 5;          // days with impressions // check = > dev_days
  int32_t dev_days = 1;      // the last ones, written to dev/ // check = >= 1
  int32_t history_days = 7;  // before the first impression day; histories are clicks of this window // check = >= 1
  int64_t start_time = 1573257600;  // the first impression day: 11/9/2019 12:00:00 AM UTC, as MINDsmall_train

  int32_t topics = 8;  // check = >= 1
  int32_t subcategories_per_topic = 3;
  int32_t topic_words = 60;   // made-up words of each topic's own vocabulary
  int32_t common_words = 120;  // shared words (English function words first)
  double topic_word_share = 0.5;
  int32_t min_title_words = 5, max_title_words = 15;
  int32_t min_abstract_words = 10, max_abstract_words = 30;
  double appeal_stddev = 0.5;

  int32_t min_user_topics = 1, max_user_topics = 3;
  double background_interest = 0.1;
  double drift = 0.3;  // share of interest moved to the drift topic by the last day // check = [0, 1]
  int32_t min_history = 5, max_history = 40;
  double empty_history_share = 0.02;

  double impressions_per_user_day = 0.8;
  int32_t min_candidates = 5, max_candidates = 30;  // check = 2 <= min <= max
  double recent_days = 2.0;  // candidates (and history slates) are news of this window before the click
  double topic_sharpness = 1.0;
  double recency_weight = 1.5;
  double extra_click_probability = 0.35;

  uint64_t seed = 2019;
};

// 5,000 users, 20,000 news, 6 train days and 1 dev day after a 14-day history window (about 28,000 impressions).
MindGeneratorOptions mind_demo_options();

// What the generator knows and the files do not say (publication times, topics, interests): for tests and demos.
struct MindGeneratorTruth {
  std::string train_folder;  // <folder>/train: news.tsv, behaviors.tsv
  std::string dev_folder;    // <folder>/dev
  std::vector<std::string> topic_names;  // topic t is the category topic_names[t]
  std::vector<std::string> news_ids;     // per news, in publication order (N1, N2, ...)
  std::vector<int64_t> published;        // per news, Unix seconds
  std::vector<int32_t> news_topic;       // per news
  std::vector<std::string> user_ids;     // U1, U2, ...
  std::vector<std::vector<int32_t>> user_topics;  // per user, the topics of its initial interest, strongest first
  std::vector<int32_t> drift_topic;               // per user
  int64_t train_impressions = 0;
  int64_t dev_impressions = 0;
};

// Writes <folder>/train/{news,behaviors}.tsv and <folder>/dev/{news,behaviors}.tsv (folders created; files
// replaced). The same options give byte-identical files.
MindGeneratorTruth generate_mind(const MindGeneratorOptions& options, const std::string& folder);

}  // namespace embrec::data
