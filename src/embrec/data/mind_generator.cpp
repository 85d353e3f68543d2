// The MIND-format generator: words, topics, news, users with drifting interests, histories, impressions, files.
// The process is documented step by step in mind_generator.h; the steps below carry its numbers.
#include "embrec/data/mind_generator.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <unordered_set>

#include "embrec/data/mind.h"
#include "embrec/util/error.h"
#include "embrec/util/files.h"

namespace embrec::data {

namespace {

constexpr int64_t kDaySeconds = 86400;
constexpr double kPi = 3.14159265358979323846;
// A history click is chosen from a slate of this many recent news (a front page, roughly).
constexpr int32_t kHistorySlate = 20;

// Draws computed from the raw outputs of mt19937_64 (whose sequence the standard fixes), unlike std::
// distributions, whose algorithms differ between standard libraries.
class Draw {
 public:
  explicit Draw(uint64_t seed) : engine_(seed) {}
  // Uniform in (0, 1): never 0, so logarithms are finite.
  double unit() { return (static_cast<double>(engine_() >> 11) + 0.5) * 0x1.0p-53; }
  // Uniform integer in [0, n).
  int64_t below(int64_t n) { return std::min(static_cast<int64_t>(unit() * static_cast<double>(n)), n - 1); }
  int64_t between(int64_t low, int64_t high) { return low + below(high - low + 1); }
  bool chance(double probability) { return unit() < probability; }
  double normal() {  // Box-Muller
    return std::sqrt(-2.0 * std::log(unit())) * std::cos(2.0 * kPi * unit());
  }
  double gumbel() { return -std::log(-std::log(unit())); }
  int64_t poisson(double mean) {  // Knuth's product of uniforms: means here are about 1
    const double limit = std::exp(-mean);
    int64_t count = 0;
    for (double product = unit(); product > limit; product *= unit()) ++count;
    return count;
  }
  template <typename T>
  void shuffle(std::vector<T>& values) {
    for (size_t i = values.size(); i > 1; --i) std::swap(values[i - 1], values[static_cast<size_t>(below(i))]);
  }

 private:
  std::mt19937_64 engine_;
};

// Draws index i with probability weights[i] / sum (binary search over the cumulative sums).
class Categorical {
 public:
  explicit Categorical(const std::vector<double>& weights) {
    double total = 0.0;
    for (double weight : weights) cumulative_.push_back(total += weight);
  }
  int32_t draw(Draw& draw) const {
    const double target = draw.unit() * cumulative_.back();
    const auto it = std::upper_bound(cumulative_.begin(), cumulative_.end(), target);
    return static_cast<int32_t>(std::min<ptrdiff_t>(it - cumulative_.begin(), cumulative_.size() - 1));
  }

 private:
  std::vector<double> cumulative_;
};

std::vector<double> zipf_weights(int32_t count, double exponent) {
  std::vector<double> weights(count);
  for (int32_t r = 0; r < count; ++r) weights[r] = 1.0 / std::pow(r + 1.0, exponent);
  return weights;
}

const std::vector<std::string>& category_names() {
  // MIND's own top-level categories, most frequent first.
  static const std::vector<std::string> names{
      "news",   "sports", "finance", "lifestyle", "foodanddrink", "travel", "health",       "autos",       "weather",
      "entertainment", "music", "movies", "tv",   "video",        "kids",   "middleeast", "northamerica"};
  return names;
}

// A made-up word of two or three consonant-vowel syllables (some closed by a consonant): pronounceable, and not an
// English word a pre-trained embedding could know.
std::string made_up_word(Draw& draw) {
  static const char kConsonants[] = "bcdfghjklmnprstvz";
  static const char kVowels[] = "aeiou";
  std::string word;
  const int64_t syllables = draw.between(2, 3);
  for (int64_t s = 0; s < syllables; ++s) {
    word += kConsonants[draw.below(sizeof(kConsonants) - 1)];
    word += kVowels[draw.below(sizeof(kVowels) - 1)];
    if (draw.chance(0.25)) word += kConsonants[draw.below(sizeof(kConsonants) - 1)];
  }
  return word;
}

// Step 1: `count` new words (made up, distinct from every word in `taken`), after `seeded` when given.
std::vector<std::string> word_list(Draw& draw, int32_t count, std::vector<std::string> seeded,
                                   std::unordered_set<std::string>& taken) {
  std::vector<std::string> words;
  for (std::string& word : seeded) {
    if (static_cast<int32_t>(words.size()) == count) break;
    if (taken.insert(word).second) words.push_back(std::move(word));
  }
  while (static_cast<int32_t>(words.size()) < count) {
    std::string word = made_up_word(draw);
    if (taken.insert(word).second) words.push_back(std::move(word));
  }
  return words;
}

struct Vocabularies {
  std::vector<std::string> common;
  std::vector<std::vector<std::string>> topic;
  Categorical common_rank{{1.0}};
  Categorical topic_rank{{1.0}};
};

struct News {
  int64_t published = 0;
  int32_t topic = 0;
  int32_t subcategory = 0;
  double appeal = 0.0;
  std::string title;
  std::string abstract;
};

struct User {
  std::vector<double> interest;  // at the start of the history window
  std::vector<int32_t> topics;   // strongest first
  int32_t drift_topic = 0;
  std::vector<int32_t> history;  // oldest first
};

struct Impression {
  int64_t time = 0;
  int32_t user = 0;
  std::vector<int32_t> candidates;
  std::vector<int8_t> labels;
};

class Generator {
 public:
  explicit Generator(const MindGeneratorOptions& options)
      : options_(options),
        draw_(options.seed),
        window_start_(options.start_time - static_cast<int64_t>(options.history_days) * kDaySeconds),
        window_end_(options.start_time + static_cast<int64_t>(options.days) * kDaySeconds),
        recent_seconds_(static_cast<int64_t>(options.recent_days * kDaySeconds)),
        topic_popularity_(zipf_weights(options.topics, 0.7)) {}

  MindGeneratorTruth run(const std::string& folder) {
    make_vocabularies();
    make_news();
    make_users();
    for (int32_t u = 0; u < options_.users; ++u) make_history(u);
    make_impressions();
    return write(folder);
  }

 private:
  // Step 1.
  void make_vocabularies() {
    static const std::vector<std::string> kEnglish{
        "the",  "to",   "of",    "in",   "a",     "for",   "and",  "on",    "is",   "with", "after", "new",
        "how",  "at",   "from",  "by",   "this",  "why",   "what", "says",  "more", "over", "first", "are",
        "your", "about", "will", "as",   "be",    "who",   "here", "could", "year", "best", "top",   "just"};
    std::unordered_set<std::string> taken;
    words_.common = word_list(draw_, options_.common_words, kEnglish, taken);
    for (int32_t t = 0; t < options_.topics; ++t)
      words_.topic.push_back(word_list(draw_, options_.topic_words, {}, taken));
    words_.common_rank = Categorical(zipf_weights(options_.common_words, 1.0));
    words_.topic_rank = Categorical(zipf_weights(options_.topic_words, 1.0));
  }

  std::string sentence(int32_t topic, int32_t min_words, int32_t max_words, bool title) {
    const int64_t length = draw_.between(min_words, max_words);
    std::string text;
    for (int64_t w = 0; w < length; ++w) {
      std::string word = draw_.chance(options_.topic_word_share) ? words_.topic[topic][words_.topic_rank.draw(draw_)]
                                                                  : words_.common[words_.common_rank.draw(draw_)];
      if (w == 0) word[0] = static_cast<char>(word[0] - 'a' + 'A');
      if (w > 0) text += ' ';
      text += word;
      if (w + 1 < length && draw_.chance(0.08)) text += ',';
    }
    if (!title) return text + '.';
    const double ending = draw_.unit();
    return ending < 0.12 ? text + '?' : ending < 0.17 ? text + '!' : text;
  }

  // Steps 2 and 3.
  void make_news() {
    const Categorical topic_of(topic_popularity_);
    std::vector<int64_t> times(options_.news);
    for (int64_t& time : times) time = window_start_ + draw_.below(window_end_ - window_start_);
    std::sort(times.begin(), times.end());
    news_.resize(options_.news);
    for (int32_t n = 0; n < options_.news; ++n) {
      News& item = news_[n];
      item.published = times[n];
      item.topic = topic_of.draw(draw_);
      item.subcategory = static_cast<int32_t>(draw_.below(options_.subcategories_per_topic));
      item.appeal = options_.appeal_stddev * draw_.normal();
      item.title = sentence(item.topic, options_.min_title_words, options_.max_title_words, true);
      item.abstract = sentence(item.topic, options_.min_abstract_words, options_.max_abstract_words, false);
    }
  }

  // Step 4.
  void make_users() {
    users_.resize(options_.users);
    const int32_t topics = options_.topics;
    for (User& user : users_) {
      const int64_t count = std::min<int64_t>(draw_.between(options_.min_user_topics, options_.max_user_topics), topics);
      std::vector<double> remaining = topic_popularity_;
      std::vector<std::pair<double, int32_t>> chosen;
      for (int64_t k = 0; k < count; ++k) {
        const int32_t topic = Categorical(remaining).draw(draw_);
        remaining[topic] = 0.0;
        chosen.emplace_back(0.5 + 0.5 * draw_.unit(), topic);
      }
      std::sort(chosen.begin(), chosen.end(), std::greater<>());
      double total = 0.0;
      for (const auto& [weight, topic] : chosen) total += weight;
      user.interest.assign(topics, options_.background_interest / topics);
      for (const auto& [weight, topic] : chosen) {
        user.interest[topic] += (1.0 - options_.background_interest) * weight / total;
        user.topics.push_back(topic);
      }
      const bool any_left = static_cast<int32_t>(chosen.size()) < topics;
      user.drift_topic = Categorical(any_left ? remaining : topic_popularity_).draw(draw_);
    }
  }

  double interest(const User& user, int32_t topic, int64_t time) const {
    const double progress =
        static_cast<double>(time - window_start_) / static_cast<double>(window_end_ - window_start_);
    const double moved = options_.drift * progress;
    return (1.0 - moved) * user.interest[topic] + (topic == user.drift_topic ? moved : 0.0);
  }

  // News published in [time - recent, time): a range of the publication-ordered news.
  std::pair<int32_t, int32_t> recent_news(int64_t time) const {
    const auto by_time = [](const News& item, int64_t t) { return item.published < t; };
    const auto first = std::lower_bound(news_.begin(), news_.end(), time - recent_seconds_, by_time);
    const auto last = std::lower_bound(news_.begin(), news_.end(), time, by_time);
    return {static_cast<int32_t>(first - news_.begin()), static_cast<int32_t>(last - news_.begin())};
  }

  // Step 5: the positions in `slate` of `clicks` news drawn without replacement in proportion to their weight
  // (adding Gumbel noise to log-weights and keeping the largest is exactly that draw).
  std::vector<size_t> choose_clicks(const User& user, const std::vector<int32_t>& slate, int64_t time,
                                    int64_t clicks) {
    std::vector<std::pair<double, size_t>> keys;
    keys.reserve(slate.size());
    for (size_t i = 0; i < slate.size(); ++i) {
      const News& item = news_[slate[i]];
      const double age = static_cast<double>(time - item.published) / static_cast<double>(recent_seconds_);
      const double log_weight = options_.topic_sharpness * std::log(interest(user, item.topic, time)) +
                                options_.recency_weight * (1.0 - age) + item.appeal;
      keys.emplace_back(log_weight + draw_.gumbel(), i);
    }
    std::partial_sort(keys.begin(), keys.begin() + clicks, keys.end(), std::greater<>());
    std::vector<size_t> chosen;
    for (int64_t c = 0; c < clicks; ++c) chosen.push_back(keys[c].second);
    return chosen;
  }

  // `count` distinct news of [first, last), none in `excluded` (fewer when the range has fewer), in random order.
  std::vector<int32_t> slate(int32_t first, int32_t last, int64_t count, const std::unordered_set<int32_t>& excluded) {
    const int64_t range = last - first;
    std::vector<int32_t> chosen;
    if (range >= 4 * (count + static_cast<int64_t>(excluded.size()))) {
      // A wide window (the usual case): rejection draws, without copying the window.
      while (static_cast<int64_t>(chosen.size()) < count) {
        const int32_t news = first + static_cast<int32_t>(draw_.below(range));
        if (!excluded.count(news) && std::find(chosen.begin(), chosen.end(), news) == chosen.end())
          chosen.push_back(news);
      }
      return chosen;
    }
    for (int32_t n = first; n < last; ++n)
      if (!excluded.count(n)) chosen.push_back(n);
    count = std::min<int64_t>(count, static_cast<int64_t>(chosen.size()));
    for (int64_t i = 0; i < count; ++i)
      std::swap(chosen[i], chosen[i + draw_.below(static_cast<int64_t>(chosen.size()) - i)]);
    chosen.resize(count);
    return chosen;
  }

  // Step 6.
  void make_history(int32_t u) {
    User& user = users_[u];
    if (draw_.chance(options_.empty_history_share)) return;
    const int64_t length = draw_.between(options_.min_history, options_.max_history);
    std::vector<std::pair<int64_t, int32_t>> clicks;  // (time, news)
    std::unordered_set<int32_t> clicked;
    for (int64_t k = 0; k < length; ++k) {
      const int64_t time = window_start_ + draw_.below(options_.start_time - window_start_);
      const auto [first, last] = recent_news(time);
      const std::vector<int32_t> shown = slate(first, last, kHistorySlate, clicked);
      if (shown.empty()) continue;
      const int32_t news = shown[choose_clicks(user, shown, time, 1)[0]];
      clicked.insert(news);
      clicks.emplace_back(time, news);
    }
    std::sort(clicks.begin(), clicks.end());
    for (const auto& [time, news] : clicks) user.history.push_back(news);
  }

  // Step 7.
  void make_impressions() {
    for (int32_t day = 0; day < options_.days; ++day) {
      for (int32_t u = 0; u < options_.users; ++u) {
        const User& user = users_[u];
        const std::unordered_set<int32_t> history(user.history.begin(), user.history.end());
        const int64_t count = draw_.poisson(options_.impressions_per_user_day);
        for (int64_t k = 0; k < count; ++k) {
          Impression impression;
          impression.user = u;
          impression.time = options_.start_time + day * kDaySeconds + draw_.below(kDaySeconds);
          const auto [first, last] = recent_news(impression.time);
          const int64_t wanted = draw_.between(options_.min_candidates, options_.max_candidates);
          impression.candidates = slate(first, last, wanted, history);
          const int64_t shown = static_cast<int64_t>(impression.candidates.size());
          if (shown < 2) continue;  // one click and one non-click at least
          int64_t clicks = 1;
          while (clicks < shown - 1 && draw_.chance(options_.extra_click_probability)) ++clicks;
          impression.labels.assign(shown, 0);
          for (size_t i : choose_clicks(user, impression.candidates, impression.time, clicks))
            impression.labels[i] = 1;
          // The slate was drawn in a random order already; shuffle the pairs so that display order carries nothing.
          std::vector<std::pair<int32_t, int8_t>> shown_pairs;
          for (int64_t i = 0; i < shown; ++i) shown_pairs.emplace_back(impression.candidates[i], impression.labels[i]);
          draw_.shuffle(shown_pairs);
          for (int64_t i = 0; i < shown; ++i) {
            impression.candidates[i] = shown_pairs[i].first;
            impression.labels[i] = shown_pairs[i].second;
          }
          (day < options_.days - options_.dev_days ? train_ : dev_).push_back(std::move(impression));
        }
      }
    }
  }

  // Step 8.
  std::string news_id(int32_t n) const { return "N" + std::to_string(n + 1); }
  std::string user_id(int32_t u) const { return "U" + std::to_string(u + 1); }
  std::string category(int32_t topic) const {
    return topic < static_cast<int32_t>(category_names().size()) ? category_names()[topic]
                                                                 : "topic" + std::to_string(topic + 1);
  }

  void write_split(const std::string& folder, std::vector<Impression>& impressions) {
    make_directories(folder);
    std::stable_sort(impressions.begin(), impressions.end(),
                     [](const Impression& a, const Impression& b) { return a.time < b.time; });
    std::vector<uint8_t> referenced(news_.size(), 0);
    std::string behaviors;
    for (size_t i = 0; i < impressions.size(); ++i) {
      const Impression& impression = impressions[i];
      behaviors += fmt::format("{}\t{}\t{}\t", i + 1, user_id(impression.user), format_mind_time(impression.time));
      const std::vector<int32_t>& history = users_[impression.user].history;
      for (size_t h = 0; h < history.size(); ++h) {
        if (h > 0) behaviors += ' ';
        behaviors += news_id(history[h]);
        referenced[history[h]] = 1;
      }
      behaviors += '\t';
      for (size_t c = 0; c < impression.candidates.size(); ++c) {
        if (c > 0) behaviors += ' ';
        behaviors += news_id(impression.candidates[c]) + (impression.labels[c] ? "-1" : "-0");
        referenced[impression.candidates[c]] = 1;
      }
      behaviors += '\n';
    }
    std::string news;
    for (int32_t n = 0; n < static_cast<int32_t>(news_.size()); ++n) {
      if (!referenced[n]) continue;
      const News& item = news_[n];
      const std::string name = category(item.topic);
      news += fmt::format("{}\t{}\t{}_{}\t{}\t{}\thttps://assets.msn.com/labs/mind/{}.html\t[]\t[]\n", news_id(n),
                          name, name, item.subcategory + 1, item.title, item.abstract, news_id(n));
    }
    write_file_atomic(folder + "/news.tsv", news);
    write_file_atomic(folder + "/behaviors.tsv", behaviors);
  }

  MindGeneratorTruth write(const std::string& folder) {
    MindGeneratorTruth truth;
    truth.train_folder = folder + "/train";
    truth.dev_folder = folder + "/dev";
    truth.train_impressions = static_cast<int64_t>(train_.size());
    truth.dev_impressions = static_cast<int64_t>(dev_.size());
    write_split(truth.train_folder, train_);
    write_split(truth.dev_folder, dev_);
    for (int32_t t = 0; t < options_.topics; ++t) truth.topic_names.push_back(category(t));
    for (int32_t n = 0; n < static_cast<int32_t>(news_.size()); ++n) {
      truth.news_ids.push_back(news_id(n));
      truth.published.push_back(news_[n].published);
      truth.news_topic.push_back(news_[n].topic);
    }
    for (int32_t u = 0; u < options_.users; ++u) {
      truth.user_ids.push_back(user_id(u));
      truth.user_topics.push_back(users_[u].topics);
      truth.drift_topic.push_back(users_[u].drift_topic);
    }
    return truth;
  }

  const MindGeneratorOptions& options_;
  Draw draw_;
  const int64_t window_start_;  // t0: the start of the history window
  const int64_t window_end_;    // the end of the last impression day
  const int64_t recent_seconds_;
  const std::vector<double> topic_popularity_;
  Vocabularies words_;
  std::vector<News> news_;                      // in publication order
  std::vector<User> users_;
  std::vector<Impression> train_, dev_;
};

void check(const MindGeneratorOptions& o) {
  auto range = [](const char* name, int64_t low, int64_t high, int64_t minimum) {
    if (low < minimum || high < low)
      fail("mind generator: need {} <= min_{} <= max_{} (got {} and {})", minimum, name, name, low, high);
  };
  if (o.users < 1 || o.news < 1 || o.topics < 1 || o.subcategories_per_topic < 1 || o.topic_words < 1 ||
      o.common_words < 1)
    fail("mind generator: users, news, topics, subcategories_per_topic, topic_words and common_words must be >= 1 "
         "(got {}, {}, {}, {}, {}, {})",
         o.users, o.news, o.topics, o.subcategories_per_topic, o.topic_words, o.common_words);
  if (o.dev_days < 1 || o.days <= o.dev_days || o.history_days < 1)
    fail("mind generator: need dev_days >= 1, days > dev_days and history_days >= 1 (got {}, {}, {})", o.dev_days,
         o.days, o.history_days);
  range("title_words", o.min_title_words, o.max_title_words, 1);
  range("abstract_words", o.min_abstract_words, o.max_abstract_words, 1);
  range("user_topics", o.min_user_topics, o.max_user_topics, 1);
  range("history", o.min_history, o.max_history, 0);
  range("candidates", o.min_candidates, o.max_candidates, 2);
  for (const auto& [name, value] :
       {std::pair<const char*, double>{"topic_word_share", o.topic_word_share},
        {"background_interest", o.background_interest},
        {"drift", o.drift},
        {"empty_history_share", o.empty_history_share},
        {"extra_click_probability", o.extra_click_probability}})
    if (!(value >= 0.0 && value <= 1.0)) fail("mind generator: {} must be in [0, 1], got {}", name, value);
  if (!(o.background_interest > 0.0))
    fail("mind generator: background_interest must be > 0 (every topic needs some interest), got {}",
         o.background_interest);
  if (!(o.recent_days > 0.0) || !(o.impressions_per_user_day >= 0.0) || !(o.appeal_stddev >= 0.0) ||
      !(o.topic_sharpness >= 0.0))
    fail("mind generator: need recent_days > 0 and impressions_per_user_day, appeal_stddev, topic_sharpness >= 0");
}

}  // namespace

MindGeneratorOptions mind_demo_options() {
  MindGeneratorOptions options;
  options.users = 5000;
  options.news = 20000;
  options.days = 7;
  options.dev_days = 1;
  options.history_days = 14;
  options.topics = 12;
  options.topic_words = 150;
  options.common_words = 300;
  return options;
}

MindGeneratorTruth generate_mind(const MindGeneratorOptions& options, const std::string& folder) {
  check(options);
  return Generator(options).run(folder);
}

}  // namespace embrec::data
