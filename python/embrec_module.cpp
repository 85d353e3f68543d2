// The `embrec._embrec` extension: the engine's data, training, evaluation and recommendation calls, converted to and
// from Python objects. Only conversion lives here (and in embrec/__init__.py); every decision is the library's, so
// the module and the CLI take the same code paths and raise the same errors. The GIL is released while the engine
// works (reading data, training, evaluating, searching).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <variant>
#include <string>
#include <vector>

#include "embrec/data/fetch.h"
#include "embrec/data/load.h"
#include "embrec/data/readers.h"
#include "embrec/models/evaluate.h"
#include "embrec/train/recommend.h"
#include "embrec/train/run_folder.h"
#include "embrec/train/trainer.h"
#include "embrec/util/config.h"
#include "embrec/util/error.h"
#include "embrec/util/files.h"
#include "embrec/util/progress.h"

namespace py = pybind11;
namespace fs = std::filesystem;
using namespace embrec;

namespace {

// ---- Python values <-> TOML (configs given as dicts) ----

toml::table table_from_dict(const py::dict& dict, const std::string& where);

using TomlValue = std::variant<bool, int64_t, double, std::string, toml::table, toml::array>;

TomlValue toml_value(const py::handle& value, const std::string& where) {
  if (py::isinstance<py::bool_>(value)) return value.cast<bool>();
  if (py::isinstance<py::int_>(value)) return value.cast<int64_t>();
  if (py::isinstance<py::float_>(value)) return value.cast<double>();
  if (py::isinstance<py::str>(value)) return value.cast<std::string>();
  if (py::isinstance<py::dict>(value)) return table_from_dict(value.cast<py::dict>(), where);
  if (py::isinstance<py::list>(value) || py::isinstance<py::tuple>(value)) {
    toml::array array;
    const py::sequence list = value.cast<py::sequence>();
    for (size_t i = 0; i < list.size(); ++i)
      std::visit([&](auto&& element) { array.push_back(std::move(element)); },
                 toml_value(list[i], fmt::format("{}[{}]", where, i)));
    return array;
  }
  fail("config key '{}': a {} cannot be written in TOML (use bool, int, float, str, list or dict)", where,
       py::str(value.get_type().attr("__name__")).cast<std::string>());
}

toml::table table_from_dict(const py::dict& dict, const std::string& where) {
  toml::table table;
  for (const auto& [key, value] : dict) {
    if (!py::isinstance<py::str>(key)) fail("config: every key must be a string (in '{}')", where);
    const std::string name = key.cast<std::string>();
    if (value.is_none()) continue;  // None: the key is left out, so its default applies
    std::visit([&](auto&& converted) { table.insert_or_assign(name, std::move(converted)); },
               toml_value(value, where.empty() ? name : where + "." + name));
  }
  return table;
}

// ---- output: logs and progress bars go to Python's sys.stderr while a call runs ----

void write_to_python_stderr(std::string_view text) {
  py::gil_scoped_acquire gil;
  try {
    py::object stderr_stream = py::module_::import("sys").attr("stderr");
    if (stderr_stream.is_none()) return;
    stderr_stream.attr("write")(py::str(text.data(), text.size()));
    stderr_stream.attr("flush")();
  } catch (py::error_already_set& error) {
    // A closed or odd stream never breaks the engine's work; but Ctrl-C handled while sys.stderr's Python code ran
    // surfaces here as KeyboardInterrupt, and clearing it would lose it: it is recorded again for InterruptCheck.
    const bool interrupt = error.matches(PyExc_KeyboardInterrupt);
    error.restore();
    PyErr_Clear();
    if (interrupt) PyErr_SetInterrupt();
  }
}

class PythonSink final : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& message) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(message, formatted);
    write_to_python_stderr(std::string_view(formatted.data(), formatted.size()));
  }
  void flush_() override {}
};

// For the length of one call: the engine's logs and bars written through sys.stderr (a notebook shows them; a bar
// is redrawn when sys.stderr is a terminal or a notebook's stream). Made and destroyed with the GIL held.
class PythonOutput {
 public:
  PythonOutput() : previous_(spdlog::default_logger()) {
    py::module_ sys = py::module_::import("sys");
    bool redraw = sys.attr("modules").contains("ipykernel");
    try {
      redraw = redraw || sys.attr("stderr").attr("isatty")().cast<bool>();
    } catch (py::error_already_set&) {
    }
    Progress::set_output(write_to_python_stderr, redraw);
    auto logger = std::make_shared<spdlog::logger>("embrec", std::make_shared<PythonSink>());
    logger->set_pattern("[%H:%M:%S] %v");
    spdlog::set_default_logger(logger);
  }
  ~PythonOutput() {
    spdlog::set_default_logger(previous_);
    Progress::set_output(nullptr, false);
  }
  PythonOutput(const PythonOutput&) = delete;
  PythonOutput& operator=(const PythonOutput&) = delete;

 private:
  std::shared_ptr<spdlog::logger> previous_;
};

// Ctrl-C while the engine trains with the GIL released: Python's handler only records the signal; this asks it
// (at most every 100 ms, from the main thread that called in) and tells the trainer to stop.
class InterruptCheck {
 public:
  bool operator()() {
    const auto now = std::chrono::steady_clock::now();
    if (interrupted_ || now - last_ < std::chrono::milliseconds(100)) return interrupted_;
    last_ = now;
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) {
      PyErr_Clear();  // raised again as KeyboardInterrupt once the trainer has stopped
      interrupted_ = true;
    }
    return interrupted_;
  }
  bool interrupted() const { return interrupted_; }

 private:
  bool interrupted_ = false;
  std::chrono::steady_clock::time_point last_{};
};

py::object from_json(const nlohmann::json& json) {
  return py::module_::import("json").attr("loads")(json.dump());
}

// ---- data ----

// The [data] table a Dataset stands for, read by the library exactly as a config file's (same checks, same errors).
data::DataConfig data_config_of(const py::dict& table, const std::string& source) {
  toml::table data = table_from_dict(table, "data");
  ConfigTable config_table(&data, source, "data");
  data::DataConfig config = data::DataConfig::from(config_table);
  config_table.finish();
  return config;
}

data::RawLog read_log_of(const py::dict& table) {
  const data::DataConfig config = data_config_of(table, "<embrec.Dataset.from_file>");
  py::gil_scoped_release release;
  if (!file_exists(config.path)) fail("{}: no such file", config.path);
  return data::read_log(config.path, config.read);
}

data::RawLog log_from_columns(const std::string& source, const std::vector<std::string>& users,
                              const std::vector<std::string>& items,
                              const std::optional<py::array_t<float, py::array::c_style | py::array::forcecast>>& ratings,
                              const std::optional<py::array_t<int64_t, py::array::c_style | py::array::forcecast>>& times) {
  const auto check_length = [&](const py::array& column, const char* name) {
    if (column.ndim() != 1 || static_cast<size_t>(column.shape(0)) != users.size())
      fail("{}: column '{}' has {} values, the user column {}", source, name, column.size(), users.size());
  };
  if (ratings) check_length(*ratings, "rating");
  if (times) check_length(*times, "timestamp");
  return data::raw_log_from_columns(source, users, items, ratings ? ratings->data() : nullptr,
                                    times ? times->data() : nullptr);
}

struct Prepared {
  data::LoadedData loaded;
};

Prepared prepare(const data::RawLog& log, const py::dict& table) {
  const data::DataConfig config = data_config_of(table, "<embrec.Dataset.prepare>");
  py::gil_scoped_release release;
  Prepared prepared;
  prepared.loaded.dataset = data::prepare_dataset(log, config.prepare);
  prepared.loaded.split = data::make_split(prepared.loaded.dataset, config.split);
  return prepared;
}

// The prepared interactions as columns (external ids), each user's in time order.
py::dict interaction_columns(const data::Dataset& dataset) {
  const data::Sequences& all = dataset.interactions;
  py::list users, items;
  py::array_t<float> ratings(all.has_ratings() ? all.size() : 0);
  py::array_t<int64_t> timestamps(all.has_timestamps() ? all.size() : 0);
  for (int32_t u = 0; u < all.user_count(); ++u) {
    py::str user(dataset.users.external(u));
    for (int64_t i = all.offsets[u]; i < all.offsets[u + 1]; ++i) {
      users.append(user);
      items.append(py::str(dataset.items.external(all.items[i])));
    }
  }
  if (all.has_ratings()) std::copy(all.ratings.begin(), all.ratings.end(), ratings.mutable_data());
  if (all.has_timestamps()) std::copy(all.timestamps.begin(), all.timestamps.end(), timestamps.mutable_data());
  py::dict columns;
  columns["user"] = users;
  columns["item"] = items;
  if (all.has_ratings()) columns["rating"] = ratings;
  if (all.has_timestamps()) columns["timestamp"] = timestamps;
  return columns;
}

py::dict read_options_table(const data::ReadOptions& options) {
  py::dict table;
  table["format"] = name_of(data::kLogFormatNames, options.format);
  table["user_column"] = options.user_column;
  table["item_column"] = options.item_column;
  table["rating_column"] = options.rating_column;
  table["timestamp_column"] = options.timestamp_column;
  return table;
}

// Writes a DataFrame's log where a run reads it. On resume the run's file must hold the same log: a different one
// would silently train the checkpoint on other data.
void write_run_log(const data::RawLog& log, const std::string& path, bool resume) {
  py::gil_scoped_release release;
  const std::string fresh = path + ".new";
  data::write_raw_log(fresh, log);
  if (file_exists(path) && read_file(path) != read_file(fresh)) {
    const std::string folder = fs::path(path).parent_path().string();
    if (resume) {
      fs::remove(fresh);
      fail("{}: resuming with a DataFrame that differs from the one this run trained on", path);
    }
    if (file_exists(folder + "/checkpoint.pt")) {  // the trainer refuses this folder; keep its data as it is
      fs::remove(fresh);
      fail("{}: already holds a run (checkpoint.pt); pass resume=True to continue it, or choose another out=", folder);
    }
  }
  fs::rename(fresh, path);
}

// ---- training ----

// config: a TOML path or a dict of tables; data: a [data] table replacing the config's (or None); overrides: the
// CLI's --set assignments. What the run reached is in its folder (results.json, read by the Python Run).
void train_run(const py::object& config, const std::optional<py::dict>& data_table, const std::string& out,
               bool resume, const std::vector<std::string>& overrides) {
  ConfigDocument document;
  std::string source;
  if (py::isinstance<py::dict>(config)) {
    document.table = table_from_dict(config.cast<py::dict>(), "");
    source = "<config dict>";
  } else {
    source = py::str(config).cast<std::string>();
    document = read_config_document(source);
  }
  if (data_table) document.table.insert_or_assign("data", table_from_dict(*data_table, "data"));
  for (const std::string& assignment : overrides) apply_override(document.table, assignment);
  PythonOutput output;
  InterruptCheck interrupt;
  {
    py::gil_scoped_release release;
    ConfigTable root = ConfigTable::from_document(std::move(document), source);
    train::Experiment experiment = train::load_experiment(root);
    train::TrainOptions options{out, resume, -1, std::ref(interrupt)};
    train::train(experiment, options);
  }
  if (interrupt.interrupted()) {
    PyErr_SetString(PyExc_KeyboardInterrupt,
                    fmt::format("training stopped; {} keeps the last finished epoch (resume=True continues)", out).c_str());
    throw py::error_already_set();
  }
}

// ---- a finished run ----

class Run {
 public:
  explicit Run(std::string dir) : dir_(std::move(dir)) {
    PythonOutput output;
    py::gil_scoped_release release;
    experiment_ = std::make_unique<train::Experiment>(train::load_run(dir_));
    train::set_threads(experiment_->train_config);
  }

  const std::string& dir() const { return dir_; }
  std::string model_name() const { return experiment_->model->name(); }
  std::string config_toml() const { return experiment_->resolved_toml; }

  py::object evaluate(const std::vector<int64_t>& ks, const std::vector<std::string>& metrics, const std::string& stage_name) {
    const train::EvalStage stage = [&] {
      for (const auto& [name, value] : train::kEvalStageNames)
        if (name == stage_name) return value;
      fail("evaluate: stage must be 'test', 'valid' or 'cold', got '{}'", stage_name);
    }();
    eval::EvalConfig config = experiment_->eval_config;
    if (!ks.empty()) config.ks = ks;
    if (!metrics.empty()) config.metrics = metrics;
    PythonOutput output;
    nlohmann::json json;
    {
      py::gil_scoped_release release;
      const data::Split& split = experiment_->data.split;
      const eval::UserGroups groups = eval::result_groups(split.train, experiment_->train_config.head_share,
                                                          experiment_->data.dataset.item_count(), config);
      if (stage == train::EvalStage::Cold && split.cold.size() == 0)
        fail("{}: no cold-start stage (its [data.split] holds out no items: cold_item_ratio = 0)", dir_);
      const data::EvalTask task = stage == train::EvalStage::Cold
                                      ? data::make_cold_task(split)
                                      : data::make_eval_task(split, stage == train::EvalStage::Test);
      const eval::EvalResult result =
          models::evaluate_model(*experiment_->model, task, experiment_->data.dataset.item_count(), config, &groups);
      json = result.to_json();
      json["rows"] = result.row_keys(config.ks, config.metrics);  // the CLI table's row order
    }
    return from_json(json);
  }

  // (external ids, [n x dim] float32): one copy, from the model's tensor into the NumPy array.
  py::tuple item_vectors() {
    torch::Tensor vectors;
    {
      py::gil_scoped_release release;
      torch::NoGradGuard no_grad;
      vectors = embedding_model().item_vectors();
    }
    return py::make_tuple(experiment_->data.dataset.items.externals(), to_numpy(vectors));
  }

  // Every user's vector from the user's whole known history, as `embrec export` stores it.
  py::tuple user_vectors() {
    torch::Tensor vectors;
    {
      py::gil_scoped_release release;
      torch::NoGradGuard no_grad;
      const data::Dataset& dataset = experiment_->data.dataset;
      std::vector<int32_t> users(static_cast<size_t>(dataset.user_count()));
      for (int32_t u = 0; u < dataset.user_count(); ++u) users[u] = u;
      vectors = embedding_model().user_vectors(dataset.interactions, users.data(), dataset.user_count());
    }
    return py::make_tuple(experiment_->data.dataset.users.externals(), to_numpy(vectors));
  }

  py::dict recommend_users(const std::vector<std::string>& externals, int64_t k, bool exclude_seen) {
    const data::IdMap& users = experiment_->data.dataset.users;
    std::vector<int32_t> ids;
    for (size_t i = 0; i < externals.size(); ++i) {
      const int32_t id = users.find(externals[i]);
      if (id < 0) fail("unknown user '{}' (users[{}])", externals[i], i);
      ids.push_back(id);
    }
    train::Recommendations found;
    {
      py::gil_scoped_release release;
      found = train::recommend_users(*experiment_, ids, k, exclude_seen);
    }
    return columns_of(found, externals);
  }

  py::dict recommend_histories(const std::vector<std::vector<std::string>>& histories, int64_t k, bool exclude_seen) {
    const data::IdMap& items = experiment_->data.dataset.items;
    data::Sequences sequences;
    std::vector<std::string> labels;
    for (size_t q = 0; q < histories.size(); ++q) {
      std::vector<int32_t> ids;
      for (size_t i = 0; i < histories[q].size(); ++i) {
        const int32_t id = items.find(histories[q][i]);
        if (id < 0) fail("unknown item '{}' (histories[{}][{}])", histories[q][i], q, i);
        ids.push_back(id);
      }
      sequences.push_user(ids.data(), static_cast<int64_t>(ids.size()));
      labels.push_back(std::to_string(q));
    }
    train::Recommendations found;
    {
      py::gil_scoped_release release;
      found = train::recommend_histories(*experiment_, sequences, k, exclude_seen);
    }
    return columns_of(found, labels);
  }

  py::object export_to(const std::string& out, const std::string& index_factory, const std::string& metric,
                       bool cold_items, int32_t shards) {
    index::ExportOptions options;
    options.index.factory = index_factory;
    options.index.metric = index::parse_metric(metric);
    options.shards = shards;
    PythonOutput output;
    index::Manifest manifest;
    {
      py::gil_scoped_release release;
      manifest = train::export_run(dir_, out, options, cold_items);
    }
    return from_json(manifest.to_json());
  }

 private:
  models::Model& embedding_model() {
    models::Model& model = *experiment_->model;
    if (model.dim() <= 0) fail("{}: model '{}' has no item and user vectors (a count-based model)", dir_, model.name());
    return model;
  }

  static py::array_t<float> to_numpy(const torch::Tensor& tensor) {
    const torch::Tensor cpu = tensor.to(torch::kCPU, torch::kFloat32).contiguous();
    py::array_t<float> array({cpu.size(0), cpu.size(1)});
    std::memcpy(array.mutable_data(), cpu.data_ptr<float>(), static_cast<size_t>(cpu.numel()) * sizeof(float));
    return array;
  }

  py::dict columns_of(const train::Recommendations& found, const std::vector<std::string>& queries) const {
    const data::IdMap& items = experiment_->data.dataset.items;
    py::list query_column, rank_column, item_column, score_column;
    for (size_t q = 0; q < found.size(); ++q) {
      for (size_t r = 0; r < found[q].size(); ++r) {
        query_column.append(queries[q]);
        rank_column.append(r + 1);
        item_column.append(items.external(found[q][r].item));
        score_column.append(found[q][r].score);
      }
    }
    py::dict columns;
    columns["query"] = query_column;
    columns["rank"] = rank_column;
    columns["item"] = item_column;
    columns["score"] = score_column;
    return columns;
  }

  std::string dir_;
  std::unique_ptr<train::Experiment> experiment_;
};

// `embrec data fetch`: the folder, the log and the ready command (empty for a dataset embrec has no reader for).
py::dict fetch_dataset(const std::string& name, const std::string& to, const std::string& from, bool accept_unverified) {
  PythonOutput output;
  data::FetchResult result;
  {
    py::gil_scoped_release release;
    data::FetchOptions options;
    options.from = from;
    options.accept_unverified = accept_unverified;
    result = data::fetch_dataset(name, to.empty() ? data::default_fetch_folder(name) : to, options);
  }
  py::dict out;
  out["folder"] = result.folder;
  out["log"] = result.log;
  out["prepare_command"] = result.prepare_command;
  out["data_toml"] = result.data_toml;
  out["note"] = result.note;
  return out;
}

}  // namespace

PYBIND11_MODULE(_embrec, m) {
  m.doc() = "embrec's engine (see the embrec package for the Python API)";
  py::register_exception<Error>(m, "Error", PyExc_ValueError);

  py::class_<data::RawLog>(m, "RawLog")
      .def_property_readonly("source", [](const data::RawLog& log) { return log.source; })
      .def_property_readonly("rows", &data::RawLog::size)
      .def_property_readonly("has_rating", [](const data::RawLog& log) { return log.has_rating; })
      .def_property_readonly("has_timestamp", [](const data::RawLog& log) { return log.has_timestamp; })
      .def("read_table", [](const data::RawLog& log) { return read_options_table(data::raw_log_read_options(log)); });
  m.def("raw_log_from_columns", &log_from_columns, py::arg("source"), py::arg("users"), py::arg("items"),
        py::arg("ratings") = py::none(), py::arg("timestamps") = py::none());
  m.def("read_log", &read_log_of, py::arg("table"));
  m.def("write_run_log", &write_run_log, py::arg("log"), py::arg("path"), py::arg("resume"));

  py::class_<Prepared>(m, "Prepared")
      .def_property_readonly("name", [](const Prepared& p) { return p.loaded.dataset.name; })
      .def_property_readonly("users", [](const Prepared& p) { return p.loaded.dataset.user_count(); })
      .def_property_readonly("items", [](const Prepared& p) { return p.loaded.dataset.item_count(); })
      .def_property_readonly("interactions", [](const Prepared& p) { return p.loaded.dataset.interactions.size(); })
      .def_property_readonly("split_method", [](const Prepared& p) { return p.loaded.split.method; })
      .def_property_readonly("split_sizes",
                             [](const Prepared& p) {
                               const data::Split& s = p.loaded.split;
                               return py::make_tuple(s.train.size(), s.valid.size(), s.test.size());
                             })
      .def("columns", [](const Prepared& p) { return interaction_columns(p.loaded.dataset); });
  m.def("prepare", &prepare, py::arg("log"), py::arg("table"));

  m.def("train", &train_run, py::arg("config"), py::arg("data") = py::none(), py::arg("out"), py::arg("resume") = false,
        py::arg("overrides") = std::vector<std::string>{});

  py::class_<Run>(m, "Run")
      .def(py::init<std::string>(), py::arg("dir"))
      .def_property_readonly("dir", &Run::dir)
      .def_property_readonly("model", &Run::model_name)
      .def_property_readonly("config_toml", &Run::config_toml)
      .def("evaluate", &Run::evaluate, py::arg("ks"), py::arg("metrics"), py::arg("stage"))
      .def("item_vectors", &Run::item_vectors)
      .def("user_vectors", &Run::user_vectors)
      .def("recommend_users", &Run::recommend_users, py::arg("users"), py::arg("k"), py::arg("exclude_seen"))
      .def("recommend_histories", &Run::recommend_histories, py::arg("histories"), py::arg("k"),
           py::arg("exclude_seen"))
      .def("export", &Run::export_to, py::arg("out"), py::arg("index"), py::arg("metric"),
           py::arg("cold_items"), py::arg("shards"));

  m.def("fetch", &fetch_dataset, py::arg("name"), py::arg("to"), py::arg("from_"), py::arg("accept_unverified"));

}
