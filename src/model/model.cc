#include "model/model.h"

#include "core/error.h"
#include "core/log.h"
#include "core/timer.h"
#include "io/json.h"

namespace oe::model {

void read_sentence_transformers_prompts(const std::filesystem::path& dir, text::PromptOptions& options) {
  auto path = dir / "config_sentence_transformers.json";
  if (!std::filesystem::exists(path)) return;
  auto j = io::read_json_file(path);
  if (!j.contains("prompts")) return;
  const auto& p = j["prompts"];
  if (!p.is_object()) throw InvalidInput(fmt::format("{}: \"prompts\" must be an object", path.string()));
  auto take = [&](const char* key, std::string& out) {
    if (!p.contains(key)) return false;
    if (!p[key].is_string()) throw InvalidInput(fmt::format("{}: prompts.{} must be a string", path.string(), key));
    out = p[key].get<std::string>();
    return true;
  };
  take("query", options.query_prefix);
  if (!take("document", options.document_prefix)) take("passage", options.document_prefix);
}

std::shared_ptr<const Model> Model::load(const std::filesystem::path& dir, const LoadOptions& options) {
  Timer timer;
  std::shared_ptr<Model> m(new Model());
  m->dir_ = dir;
  m->compute_ = options.compute;
  m->config_ = with_context("loading config", [&] { return ModelConfig::load(dir); });
  m->tokenizer_ = with_context("loading tokenizer", [&] {
    return std::make_unique<text::Tokenizer>(text::Tokenizer::from_file(dir / "tokenizer.json"));
  });
  with_context("loading prompts", [&] { read_sentence_transformers_prompts(dir, m->prompts_); });
  m->ckpt_ = with_context("opening weights", [&] { return std::make_unique<io::Checkpoint>(io::Checkpoint::open(dir)); });
  m->text_ = with_context("loading text decoder", [&] {
    return std::make_unique<TextDecoder>(m->config_.text, *m->ckpt_, m->config_.tensor_prefix, options.compute,
                                         options.progress);
  });
  m->vision_preprocess_ = with_context("loading preprocessor_config.json",
                                       [&] { return media::VisionPreprocessConfig::load(dir); });
  if (options.load_vision) m->vision_encoder();
  if (m->tokenizer_->vocab_size() > m->config_.text.vocab_size)
    throw InvalidInput(fmt::format("tokenizer.json has {} ids but the model's vocab_size is {}",
                                   m->tokenizer_->vocab_size(), m->config_.text.vocab_size));
  m->load_seconds_ = timer.seconds();
  log_debug("loaded {} in {:.2f} s ({} layout, {})", dir.string(), m->load_seconds_, layout_name(m->config_.layout),
            kernels::compute_name(options.compute));
  return m;
}

const VisionEncoder& Model::vision_encoder() const {
  std::lock_guard lock(vision_mutex_);
  if (!vision_) {
    Timer timer;
    vision_ = with_context("loading vision encoder", [&] {
      return std::make_unique<VisionEncoder>(config_.vision, *ckpt_, config_.tensor_prefix, compute_);
    });
    log_debug("loaded the vision encoder in {:.2f} s", timer.seconds());
  }
  return *vision_;
}

bool Model::vision_loaded() const {
  std::lock_guard lock(vision_mutex_);
  return vision_ != nullptr;
}

}  // namespace oe::model
