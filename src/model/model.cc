#include "model/model.h"

#include "model/lora.h"
#include "model/preprocessor_config.h"

#include "core/error.h"
#include "core/log.h"
#include "core/timer.h"
#include "io/hash.h"
#include "io/json.h"

#include <algorithm>
#include <cstdio>
#include <vector>

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
  m->bf16_gemm_ = kernels::resolve_bf16_gemm(options.bf16_gemm);  // Unsupported before any work when it cannot run
  m->config_ = with_context("loading config", [&] { return ModelConfig::load(dir); });
  m->tokenizer_ = with_context("loading tokenizer", [&] {
    return std::make_unique<text::Tokenizer>(text::Tokenizer::from_file(dir / "tokenizer.json"));
  });
  with_context("loading prompts", [&] { read_sentence_transformers_prompts(dir, m->prompts_); });
  m->ckpt_ = with_context("opening weights", [&] { return std::make_unique<io::Checkpoint>(io::Checkpoint::open(dir)); });
  std::unique_ptr<LoraAdapter> adapter;
  if (!options.adapter.empty()) {
    with_context(fmt::format("loading adapter {}", options.adapter.string()), [&] {
      adapter = std::make_unique<LoraAdapter>(
          load_lora_adapter(options.adapter, m->config_.text, m->config_.tensor_prefix));
      m->adapter_id_ = lora_adapter_id(options.adapter);
    });
    m->adapter_dir_ = options.adapter;
  }
  m->text_ = with_context("loading text decoder", [&] {
    return std::make_unique<TextDecoder>(m->config_.text, *m->ckpt_, m->config_.tensor_prefix, options.compute, m->bf16_gemm_,
                                         options.progress, adapter.get(), options.decoder_layers);
  });
  const PreprocessorConfig preprocess =
      with_context("loading preprocessor_config.json", [&] { return PreprocessorConfig::load(dir); });
  m->vision_preprocess_ = preprocess.vision;
  m->audio_preprocess_ = preprocess.audio;
  if (options.load_vision) m->vision_encoder();
  if (m->tokenizer_->vocab_size() > m->config_.text.vocab_size)
    throw InvalidInput(fmt::format("tokenizer.json has {} ids but the model's vocab_size is {}",
                                   m->tokenizer_->vocab_size(), m->config_.text.vocab_size));
  m->load_seconds_ = timer.seconds();
  log_debug("loaded {} in {:.2f} s ({} layout, {})", dir.string(), m->load_seconds_, layout_name(m->config_.layout),
            kernels::compute_name(options.compute));
  return m;
}

const std::string& Model::fingerprint() const {
  std::call_once(fingerprint_once_, [&] {
    fingerprint_ = with_context("fingerprinting the checkpoint", [&] { return model_fingerprint(dir_); });
  });
  return fingerprint_;
}

std::vector<std::string> Model::fingerprint_aliases() const {
  return {with_context("fingerprinting the checkpoint", [&] { return legacy_model_fingerprint(dir_); })};
}

bool Model::has_fingerprint(const std::string& recorded) const {
  if (recorded == fingerprint()) return true;
  const std::vector<std::string> aliases = fingerprint_aliases();
  return std::find(aliases.begin(), aliases.end(), recorded) != aliases.end();
}

namespace {

// config.json and tokenizer.json, each after its name (an absent one adds nothing after its name).
void hash_config_files(io::Sha256& h, const std::filesystem::path& dir) {
  for (const char* name : {"config.json", "tokenizer.json"}) {
    h.update(name).update(std::string_view("\0", 1));
    if (std::filesystem::exists(dir / name)) h.update_file(dir / name);
  }
}

}  // namespace

std::string model_fingerprint(const std::filesystem::path& dir) {
  io::Sha256 h;
  hash_config_files(h, dir);
  h.update("tensors\n");
  const io::Checkpoint ckpt = io::Checkpoint::open(dir);
  constexpr size_t SAMPLE = 4 << 10;
  for (const std::string& name : ckpt.names()) {  // name order, whatever the shards
    const io::TensorInfo& t = ckpt.get(name);
    std::string shape;
    for (int64_t d : t.shape) shape += fmt::format("{},", d);
    h.update(fmt::format("{}\n{}\n{}\n{}\n", name, dtype_name(t.dtype), shape, t.nbytes));
    const auto* bytes = static_cast<const uint8_t*>(t.data);
    if (t.nbytes <= 3 * SAMPLE) {
      h.update(bytes, t.nbytes);
    } else {
      h.update(bytes, SAMPLE);
      h.update(bytes + (t.nbytes - SAMPLE) / 2, SAMPLE);
      h.update(bytes + t.nbytes - SAMPLE, SAMPLE);
    }
  }
  return h.hex();
}

std::string legacy_model_fingerprint(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  io::Sha256 h;
  hash_config_files(h, dir);
  std::vector<fs::path> shards;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".safetensors") shards.push_back(e.path());
  std::sort(shards.begin(), shards.end());
  std::vector<char> buf;
  for (const auto& p : shards) {
    std::FILE* f = std::fopen(p.c_str(), "rb");
    if (!f) throw IoError(fmt::format("cannot open {}", p.string()));
    const uint64_t size = fs::file_size(p);
    h.update(p.filename().string()).update(fmt::format(":{}:", size));
    uint64_t header = 0;
    if (std::fread(&header, 1, 8, f) != 8) header = 0;
    constexpr uint64_t SAMPLE = 64 << 10;
    const uint64_t data_begin = std::min<uint64_t>(size, 8 + header);
    auto read_at = [&](uint64_t off, uint64_t n) {
      n = std::min(n, size - std::min(off, size));
      buf.resize(n);
      if (n && (std::fseek(f, static_cast<long>(off), SEEK_SET) != 0 || std::fread(buf.data(), 1, n, f) != n)) {
        std::fclose(f);
        throw IoError(fmt::format("cannot read {}", p.string()));
      }
      h.update(buf.data(), n);
    };
    read_at(0, data_begin);  // the length and the JSON header
    const uint64_t data = size - data_begin;
    read_at(data_begin, SAMPLE);
    read_at(data_begin + (data > SAMPLE ? (data - SAMPLE) / 2 : 0), SAMPLE);
    read_at(data > SAMPLE ? size - SAMPLE : data_begin, SAMPLE);
    std::fclose(f);
  }
  return h.hex();
}

const VisionEncoder& Model::vision_encoder() const {
  std::lock_guard lock(vision_mutex_);
  if (!vision_) {
    Timer timer;
    vision_ = with_context("loading vision encoder", [&] {
      return std::make_unique<VisionEncoder>(config_.vision, *ckpt_, config_.tensor_prefix, compute_, bf16_gemm_);
    });
    log_debug("loaded the vision encoder in {:.2f} s", timer.seconds());
  }
  return *vision_;
}

bool Model::vision_loaded() const {
  std::lock_guard lock(vision_mutex_);
  return vision_ != nullptr;
}

const AudioEncoder& Model::audio_encoder() const {
  std::lock_guard lock(audio_mutex_);
  if (!audio_) {
    Timer timer;
    audio_ = with_context("loading audio encoder", [&] {
      return std::make_unique<AudioEncoder>(config_.audio, *ckpt_, config_.tensor_prefix, compute_, bf16_gemm_);
    });
    log_debug("loaded the audio encoder in {:.2f} s", timer.seconds());
  }
  return *audio_;
}

bool Model::audio_loaded() const {
  std::lock_guard lock(audio_mutex_);
  return audio_ != nullptr;
}

}  // namespace oe::model
