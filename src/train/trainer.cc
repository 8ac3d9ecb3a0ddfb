// The training loop of trainer.h: micro-batches of examples packed as attention segments through the trainable
// decoder, InfoNCE, AdamW, saves and resume.
#include "train/trainer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <numeric>
#include <random>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/timer.h"
#include "eval/dataset.h"
#include "eval/metrics.h"
#include "io/atomic_file.h"
#include "io/hash.h"
#include "io/safetensors.h"
#include "train/backward.h"
#include "train/decoder.h"

namespace oe::train {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

pipeline::EmbedItem item_of(const json& j, const fs::path& base, text::Role role) {
  pipeline::ItemFormat f;
  f.base = base;
  f.role = role;
  pipeline::EmbedItem it = pipeline::parse_item(j, f);
  if (it.text.empty() && !it.has_media()) throw InvalidInput("an item with neither text nor media");
  return it;
}

}  // namespace

std::vector<TrainExample> read_training_data(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in || !fs::is_regular_file(file)) throw IoError(fmt::format("cannot read the training data {}", file.string()));
  const fs::path base = file.parent_path();
  std::vector<TrainExample> out;
  std::string line;
  int64_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = fmt::format("{} line {}", file.string(), n);
    json j;
    try {
      j = json::parse(line);
    } catch (const json::exception& e) {
      throw InvalidInput(fmt::format("{}: not valid JSON ({})", where, e.what()));
    }
    if (!j.is_object()) throw InvalidInput(fmt::format("{}: an example is a JSON object", where));
    try {
      TrainExample ex;
      ex.line = n;
      if (!j.contains("query") || !j["query"].is_object()) throw InvalidInput("\"query\" must be an item object");
      if (!j.contains("positive") || !j["positive"].is_object())
        throw InvalidInput("\"positive\" must be an item object");
      ex.query = item_of(j["query"], base, text::Role::Query);
      ex.positive = item_of(j["positive"], base, text::Role::Document);
      if (j.contains("negatives") && !j["negatives"].is_null()) {
        if (!j["negatives"].is_array()) throw InvalidInput("\"negatives\" must be a list of item objects");
        for (const auto& neg : j["negatives"]) {
          if (!neg.is_object()) throw InvalidInput("\"negatives\" must be a list of item objects");
          ex.negatives.push_back(item_of(neg, base, text::Role::Document));
        }
      }
      out.push_back(std::move(ex));
    } catch (const InvalidInput& e) {
      throw InvalidInput(fmt::format("{}: {}", where, e.what()));
    }
  }
  if (out.empty()) throw InvalidInput(fmt::format("{}: no training examples", file.string()));
  return out;
}

namespace {

void validate(const TrainOptions& o) {
  const auto bad = [](const std::string& what) { throw InvalidInput(what); };
  if (o.out.empty()) bad("the output folder (--out) is required");
  if (o.batch < 1) bad(fmt::format("--batch must be at least 1 (got {})", o.batch));
  if (o.accumulate < 1) bad(fmt::format("--accumulate must be at least 1 (got {})", o.accumulate));
  if (o.epochs < 1) bad(fmt::format("--epochs must be at least 1 (got {})", o.epochs));
  if (o.max_steps < 0) bad(fmt::format("--max-steps must not be negative (got {})", o.max_steps));
  if (!(o.temperature > 0) || !std::isfinite(o.temperature))
    bad(fmt::format("--temperature must be positive (got {})", o.temperature));
  if (!(o.adam.lr > 0) || !std::isfinite(o.adam.lr)) bad(fmt::format("--lr must be positive (got {})", o.adam.lr));
  if (!(o.adam.weight_decay >= 0) || !std::isfinite(o.adam.weight_decay))
    bad(fmt::format("--weight-decay must not be negative (got {})", o.adam.weight_decay));
  if (!(o.warmup >= 0 && o.warmup < 1)) bad(fmt::format("--warmup is a fraction in [0, 1) (got {})", o.warmup));
  if (!(o.max_grad_norm >= 0)) bad(fmt::format("--max-grad-norm must not be negative (got {})", o.max_grad_norm));
  if (o.lora.r < 1 || o.lora.r > 1024) bad(fmt::format("--lora-r must be in [1, 1024] (got {})", o.lora.r));
  if (!(o.lora.alpha > 0)) bad(fmt::format("--lora-alpha must be positive (got {})", o.lora.alpha));
  if (!(o.lora.dropout >= 0 && o.lora.dropout < 1))
    bad(fmt::format("--lora-dropout is a probability in [0, 1) (got {})", o.lora.dropout));
  if (o.lora.targets.empty()) bad("--lora-targets names no module");
  if (o.stop_after < 0) bad(fmt::format("--stop-after must not be negative (got {})", o.stop_after));
  if (o.eval_every < 0) bad(fmt::format("--eval-every must not be negative (got {})", o.eval_every));
  if (!o.eval_dataset.empty() && !fs::is_directory(o.eval_dataset))
    bad(fmt::format("--eval-dataset {} is not a folder", o.eval_dataset.string()));
  if (o.negatives < -1) bad(fmt::format("--negatives must be -1 (all) or at least 0 (got {})", o.negatives));
}

// What a resumed run must share with the run that saved: anything that changes which examples each step sees or
// what is trained.
json run_identity(const TrainOptions& o, const std::string& data_id, int64_t total_steps) {
  json targets = json::array();
  for (auto m : o.lora.targets) targets.push_back(model::lora_module_name(m));
  return {{"data_sha256", data_id},  {"batch", o.batch},           {"accumulate", o.accumulate},
          {"seed", o.seed},          {"total_steps", total_steps}, {"negatives", o.negatives},
          {"lora_r", o.lora.r},      {"lora_alpha", o.lora.alpha}, {"lora_dropout", o.lora.dropout},
          {"lora_targets", targets}, {"epochs", o.epochs},         {"max_steps", o.max_steps}};
}

const char* STATE = "trainer-state";

void save(const fs::path& out, const std::string& prefix, const model::LoraAdapter& adapter, AdamW& opt,
          const json& identity, int64_t step) {
  const fs::path tmp = out / (std::string(STATE) + ".tmp"), cur = out / STATE, old = out / (std::string(STATE) + ".old");
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  model::save_lora_adapter(adapter, tmp, prefix);
  const auto n = static_cast<int64_t>(opt.m().size());
  io::write_safetensors(tmp / "optimizer.safetensors",
                        {{"exp_avg", DType::F32, {n}}, {"exp_avg_sq", DType::F32, {n}}},
                        [&](const io::TensorSpec& spec, void* buf) {
                          const auto& src = spec.name == "exp_avg" ? opt.m() : opt.v();
                          std::memcpy(buf, src.data(), spec.nbytes());
                        });
  json state = {{"step", step}, {"run", identity}};
  io::AtomicFile f(tmp / "state.json");
  f.write(state.dump(2) + "\n");
  f.commit();
  // The new state replaces the old one by renames: at every moment one complete state exists (cur, or old while
  // the two renames happen), and resume looks for both.
  fs::remove_all(old);
  if (fs::exists(cur)) fs::rename(cur, old);
  fs::rename(tmp, cur);
  fs::remove_all(old);
  model::save_lora_adapter(adapter, out, prefix);
}

int64_t resume(const fs::path& out, const model::TextConfig& c, const std::string& prefix, const json& identity,
               model::LoraAdapter* adapter, AdamW* opt) {
  fs::path dir = out / STATE;
  if (!fs::exists(dir / "state.json")) dir = out / (std::string(STATE) + ".old");
  if (!fs::exists(dir / "state.json"))
    throw InvalidInput(fmt::format("--resume: {} holds no training state ({}/state.json)", out.string(), STATE));
  std::ifstream in(dir / "state.json");
  json state;
  try {
    state = json::parse(in);
  } catch (const json::exception& e) {
    throw InvalidInput(fmt::format("--resume: {} is not valid JSON ({})", (dir / "state.json").string(), e.what()));
  }
  const json& saved = state.at("run");
  for (const auto& [key, value] : identity.items())
    if (!saved.contains(key) || saved[key] != value)
      throw InvalidInput(fmt::format("--resume: the saved run had {} = {}, this one has {}; resume with the same "
                                     "data and settings, or train into a new folder",
                                     key, saved.contains(key) ? saved[key].dump() : "nothing", value.dump()));
  *adapter = model::load_lora_adapter(dir, c, prefix);
  const io::Checkpoint ck = io::Checkpoint::open(dir / "optimizer.safetensors");
  const auto read = [&](const char* name) {
    const io::TensorInfo& t = ck.get(name);
    if (t.dtype != DType::F32 || t.shape != Shape{static_cast<int64_t>(opt->m().size())})
      throw InvalidInput(fmt::format("--resume: {} in {} does not fit the adapter", name, dir.string()));
    const auto* p = static_cast<const float*>(t.data);
    return std::vector<float>(p, p + opt->m().size());
  };
  const int64_t step = state.at("step").get<int64_t>();
  opt->restore(step, read("exp_avg"), read("exp_avg_sq"));
  return step;
}

// The adapter as it stands, saved under OUT and loaded into a model of the same precision, over the held-out
// dataset through the eval layer; the adapter and the embedding cache are removed afterwards.
HeldOutEval held_out(const pipeline::Encoder& encoder, const TrainOptions& o, const model::LoraAdapter& adapter,
                     int64_t step) {
  Timer t;
  const model::Model& m = encoder.model();
  const fs::path dir = o.out / "eval-adapter", cache = o.out / "eval-cache";
  fs::remove_all(dir);
  fs::remove_all(cache);
  model::save_lora_adapter(adapter, dir, m.config().tensor_prefix);
  model::LoadOptions lo;
  lo.compute = m.compute();
  lo.bf16_gemm = m.bf16_gemm();
  lo.adapter = dir;
  const pipeline::Encoder adapted(model::Model::load(m.dir(), lo), encoder.options());
  eval::DatasetOptions d;
  d.dataset = o.eval_dataset;
  d.split = o.eval_split;
  d.cache = cache;
  const eval::DatasetRun run = eval::run_dataset(adapted, m.dir().string(), d);
  eval::EvalOptions eo;
  eo.cutoffs = {10};
  const eval::EvalResult r = eval::evaluate(run.qrels, run.run, eo);
  fs::remove_all(dir);
  fs::remove_all(cache);
  HeldOutEval e;
  e.step = step;
  e.ndcg10 = r.mean(eval::Measure::Ndcg, 0);
  e.recall10 = r.mean(eval::Measure::Recall, 0);
  e.queries = r.n_queries;
  e.seconds = t.seconds();
  return e;
}

}  // namespace

TrainSummary train(const pipeline::Encoder& encoder, const TrainOptions& o,
                   const std::function<void(const TrainProgress&)>& progress) {
  validate(o);
  const model::Model& m = encoder.model();
  if (!m.adapter_dir().empty())
    throw InvalidInput("training starts from the base weights: load the model without --adapter (continue a run "
                       "with --resume)");
  const model::Embedder& embedder = encoder.embedder();
  const std::vector<TrainExample> examples = read_training_data(o.data);
  const std::string data_id = io::sha256_file_hex(o.data);

  const auto n = static_cast<int64_t>(examples.size());
  const int64_t batch = std::min(o.batch, n);
  const int64_t micro_per_epoch = (n + batch - 1) / batch;
  const int64_t steps_per_epoch = (micro_per_epoch + o.accumulate - 1) / o.accumulate;
  const int64_t total = o.max_steps > 0 ? o.max_steps : steps_per_epoch * o.epochs;
  const auto warmup = static_cast<int64_t>(std::floor(o.warmup * static_cast<double>(total)));
  const json identity = run_identity(o, data_id, total);

  const TrainableDecoder dec(m, m.compute());
  const model::TextConfig& c = dec.config();
  const std::string& prefix = m.config().tensor_prefix;
  model::LoraConfig lc = o.lora;
  if (lc.base_model.empty()) lc.base_model = m.dir().string();
  model::LoraAdapter adapter = model::init_lora_adapter(lc, c, o.seed);
  AdamW opt(adapter);
  TrainSummary summary;
  summary.examples = n;
  summary.parameters = adapter.parameter_count();
  int64_t step = 0;
  fs::create_directories(o.out);
  if (!o.resume && (fs::exists(o.out / STATE) || fs::exists(o.out / (std::string(STATE) + ".old"))))
    throw InvalidInput(fmt::format("{} holds a training run already: --resume continues it; to start again, choose "
                                   "another folder or delete its {}",
                                   o.out.string(), STATE));
  if (o.resume) {
    step = resume(o.out, c, prefix, identity, &adapter, &opt);
    adapter.config.base_model = lc.base_model;
  }
  summary.start_step = step;
  summary.total_steps = total;

  // The order of epoch e: a permutation seeded by (seed, e), so any step's examples are known without replaying.
  std::vector<std::vector<int64_t>> orders;
  const auto order = [&](int64_t e) -> const std::vector<int64_t>& {
    while (static_cast<int64_t>(orders.size()) <= e) {
      std::vector<int64_t> p(static_cast<size_t>(n));
      std::iota(p.begin(), p.end(), 0);
      std::mt19937_64 g(o.seed * 1000003ULL + orders.size() + 1);
      std::shuffle(p.begin(), p.end(), g);
      orders.push_back(std::move(p));
    }
    return orders[static_cast<size_t>(e)];
  };

  const bool evaluating = !o.eval_dataset.empty();
  if (evaluating && step < total) {
    summary.evals.push_back(held_out(encoder, o, adapter, step));
    if (progress) {
      TrainProgress p;
      p.step = step;
      p.total_steps = total;
      p.stepped = false;
      p.evals = {summary.evals.back()};
      progress(p);
    }
  }
  model::LoraAdapter grad = adapter;
  const int64_t d = c.d_model;
  Timer clock;
  int64_t tokens = 0;
  for (; step < total; ++step) {
    for (auto* t : parameter_tensors(grad)) std::fill(t->begin(), t->end(), 0.0f);
    double loss = 0;
    int64_t correct = 0, queries = 0;
    int64_t epoch = 0;
    for (int64_t j = 0; j < o.accumulate; ++j) {
      const int64_t g = step * o.accumulate + j;
      epoch = g / micro_per_epoch;
      const int64_t first = (g % micro_per_epoch) * batch;
      const std::vector<int64_t>& perm = order(epoch);
      // Queries first, then each example's positive and negatives.
      std::vector<model::PreparedInput> items;
      std::vector<int64_t> positive;
      std::vector<const TrainExample*> mb;
      for (int64_t i = first; i < std::min(n, first + batch); ++i) mb.push_back(&examples[static_cast<size_t>(perm[static_cast<size_t>(i)])]);
      const auto prep = [&](const TrainExample& ex, const pipeline::EmbedItem& it) {
        try {
          items.push_back(embedder.prepare(it.request()));
        } catch (const Error& e) {
          if (e.kind() == ErrorKind::Internal) throw;
          throw InvalidInput(fmt::format("{} line {}: {}", o.data.string(), ex.line, e.what()));
        }
      };
      for (const auto* ex : mb) prep(*ex, ex->query);
      const auto B = static_cast<int64_t>(mb.size());
      for (const auto* ex : mb) {
        positive.push_back(static_cast<int64_t>(items.size()) - B);
        prep(*ex, ex->positive);
        const auto k = o.negatives < 0 ? ex->negatives.size()
                                       : std::min(ex->negatives.size(), static_cast<size_t>(o.negatives));
        for (size_t t = 0; t < k; ++t) prep(*ex, ex->negatives[t]);
      }
      const model::DecoderBatch inputs = embedder.decoder_inputs(items);
      tokens += inputs.n_tokens;
      const Dropout dr{o.lora.dropout, o.seed, g};
      Tape tape;
      const std::vector<float> v = dec.forward(inputs, &adapter, dr, &tape);
      const auto N = static_cast<int64_t>(items.size()) - B;
      InfoNce r = info_nce(v.data(), B, v.data() + B * d, N, d, positive, o.temperature);
      if (!std::isfinite(r.loss))
        throw InvalidInput(fmt::format("the loss became {} at step {}: lower --lr or raise --temperature", r.loss,
                                       step + 1));
      std::vector<float> dv(v.size());
      const auto inv = static_cast<float>(1.0 / static_cast<double>(o.accumulate));
      for (size_t i = 0; i < r.dq.size(); ++i) dv[i] = r.dq[i] * inv;
      for (size_t i = 0; i < r.dp.size(); ++i) dv[r.dq.size() + i] = r.dp[i] * inv;
      dec.backward(inputs, adapter, dr, tape, dv.data(), &grad);
      loss += r.loss / static_cast<double>(o.accumulate);
      correct += r.correct;
      queries += B;
    }
    TrainProgress p;
    p.grad_norm = gradient_norm(grad);
    if (o.max_grad_norm > 0 && p.grad_norm > o.max_grad_norm) scale_gradients(grad, o.max_grad_norm / p.grad_norm);
    p.lr = scheduled_lr(o.adam.lr, step, total, warmup);
    opt.update(adapter, grad, p.lr, o.adam);
    if (step == summary.start_step) summary.first_loss = loss;
    summary.last_loss = loss;
    p.step = step + 1;
    p.total_steps = total;
    p.epoch = epoch;
    p.loss = loss;
    p.accuracy = static_cast<double>(correct) / static_cast<double>(std::max<int64_t>(1, queries));
    p.elapsed = clock.seconds();
    p.tokens_per_second = static_cast<double>(tokens) / std::max(1e-9, p.elapsed);
    p.eta = p.elapsed / static_cast<double>(p.step - summary.start_step) * static_cast<double>(total - p.step);
    const bool stopping = o.stop_after > 0 && p.step - summary.start_step >= o.stop_after;
    if ((o.save_every > 0 && p.step % o.save_every == 0) || p.step == total || stopping) {
      save(o.out, prefix, adapter, opt, identity, p.step);
      p.saved = true;
    }
    if (evaluating && ((o.eval_every > 0 && p.step % o.eval_every == 0) || p.step == total)) {
      p.evals.push_back(held_out(encoder, o, adapter, p.step));
      summary.evals.push_back(p.evals.back());
    }
    if (progress) progress(p);
    if (stopping) {
      ++step;
      break;
    }
  }
  if (summary.start_step == total) save(o.out, prefix, adapter, opt, identity, total);  // resumed a finished run
  summary.steps = step;
  summary.finished = step == total;
  summary.tokens = tokens;
  summary.seconds = clock.seconds();
  return summary;
}

}  // namespace oe::train
