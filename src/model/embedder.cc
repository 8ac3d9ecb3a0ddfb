#include "model/embedder.h"

#include <cmath>

#include "core/error.h"
#include "core/log.h"
#include "core/tensor.h"
#include "io/npy.h"

namespace oe::model {

std::vector<int64_t> text_position_ids(int64_t n) {
  std::vector<int64_t> pos(static_cast<size_t>(3 * n));
  for (int64_t r = 0; r < 3; ++r)
    for (int64_t i = 0; i < n; ++i) pos[static_cast<size_t>(r * n + i)] = i;
  return pos;
}

void write_prepared_input(const std::filesystem::path& dir, const PreparedInput& p) {
  std::filesystem::create_directories(dir);
  Tensor ids({1, p.n_tokens()}, DType::I64);
  std::copy(p.input_ids.begin(), p.input_ids.end(), ids.ptr<int64_t>());
  io::write_npy(dir / "input_ids.npy", ids);
  Tensor pos({3, 1, p.n_tokens()}, DType::I64);
  std::copy(p.position_ids.begin(), p.position_ids.end(), pos.ptr<int64_t>());
  io::write_npy(dir / "position_ids.npy", pos);
}

Embedder::Embedder(std::shared_ptr<const Model> model, EmbedOptions options)
    : model_(std::move(model)), options_(std::move(options)) {
  auto tail = model_->tokenizer().encode(text::chat_parts(options_.prompts).tail);
  tail_ids_.assign(tail.begin(), tail.end());
  if (max_tokens() <= static_cast<int64_t>(tail_ids_.size()) + 1)
    throw InvalidInput(fmt::format("max_tokens {} is too small for the prompt layout", max_tokens()));
}

int64_t Embedder::max_tokens() const {
  int64_t limit = model_->config().text.max_position_embeddings;
  return options_.max_tokens > 0 ? std::min(options_.max_tokens, limit) : limit;
}

PreparedInput Embedder::prepare(const EmbedRequest& request) const {
  if (request.role == text::Role::Query && request.text.empty())
    throw InvalidInput("the query text is empty: a query needs some text");
  std::string prompt = text::render_text_prompt(request.role, request.text, options_.prompts);
  auto ids32 = model_->tokenizer().encode(prompt);
  PreparedInput p;
  p.input_ids.assign(ids32.begin(), ids32.end());
  p.original_tokens = p.n_tokens();
  const int64_t limit = max_tokens();
  if (p.n_tokens() > limit) {
    // Keep the head and as much of the user text as fits, then the closing tokens.
    p.input_ids.resize(static_cast<size_t>(limit - static_cast<int64_t>(tail_ids_.size())));
    p.input_ids.insert(p.input_ids.end(), tail_ids_.begin(), tail_ids_.end());
    p.truncated = true;
  }
  p.position_ids = text_position_ids(p.n_tokens());
  return p;
}

std::vector<Embedding> Embedder::embed_prepared(const std::vector<PreparedInput>& items,
                                                std::vector<float>* last_hidden,
                                                const LayerObserver& observer) const {
  const TextDecoder& dec = model_->text_decoder();
  const int64_t d = dec.config().d_model;
  std::vector<Embedding> out;
  if (items.empty()) return out;
  // Pack the items as segments: ids and positions concatenated.
  DecoderInput in;
  in.cu_seqlens.push_back(0);
  int64_t total = 0;
  for (const auto& it : items) {
    OE_CHECK(it.n_tokens() > 0 && static_cast<int64_t>(it.position_ids.size()) == 3 * it.n_tokens());
    total += it.n_tokens();
    in.cu_seqlens.push_back(total);
  }
  std::vector<int64_t> ids, pos(static_cast<size_t>(3 * total));
  ids.reserve(static_cast<size_t>(total));
  for (size_t s = 0; s < items.size(); ++s) {
    const auto& it = items[s];
    const int64_t n = it.n_tokens(), off = in.cu_seqlens[s];
    ids.insert(ids.end(), it.input_ids.begin(), it.input_ids.end());
    for (int64_t r = 0; r < 3; ++r)
      std::copy_n(it.position_ids.begin() + r * n, n, pos.begin() + r * total + off);
  }
  auto embeds = aligned_array<float>(static_cast<size_t>(total * d));
  dec.embed(ids.data(), total, embeds.get());
  in.inputs_embeds = embeds.get();
  in.position_ids = pos.data();
  in.n_tokens = total;
  const std::vector<int64_t> offsets = in.cu_seqlens;
  if (items.size() == 1) in.cu_seqlens.clear();
  std::vector<float> hidden(static_cast<size_t>(total * d));
  dec.forward(in, options_.attention, hidden.data(), observer);

  // Masked mean over every token of each item, in fp32 (the reference pools bf16 values), then L2.
  for (size_t s = 0; s < items.size(); ++s) {
    const int64_t b = offsets[s];
    const int64_t n = items[s].n_tokens();
    std::vector<double> acc(static_cast<size_t>(d), 0.0);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < d; ++j) acc[static_cast<size_t>(j)] += hidden[static_cast<size_t>((b + i) * d + j)];
    double norm = 0;
    for (auto& a : acc) {
      a /= static_cast<double>(n);
      norm += a * a;
    }
    norm = std::sqrt(norm);
    Embedding e;
    e.vector.resize(static_cast<size_t>(d));
    for (int64_t j = 0; j < d; ++j)
      e.vector[static_cast<size_t>(j)] = static_cast<float>(norm > 0 ? acc[static_cast<size_t>(j)] / norm : 0.0);
    e.n_tokens = n;
    e.truncated = items[s].truncated;
    out.push_back(std::move(e));
  }
  if (last_hidden) *last_hidden = std::move(hidden);
  return out;
}

Embedding Embedder::embed(const EmbedRequest& request) const {
  PreparedInput p = prepare(request);
  if (p.truncated)
    log_warn("input of {} tokens truncated to {} (the model's context limit)", p.original_tokens, p.n_tokens());
  return embed_prepared({p}).front();
}

}  // namespace oe::model
