// The embedding pipeline of one or more items: prompt → token ids → TMRoPE positions → bidirectional decoder →
// masked mean over every token → L2 normalisation (spec omni-embed-nemotron.md §2). Text items for now; media items
// join through the same PreparedInput.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/model.h"
#include "model/text_decoder.h"
#include "text/prompt.h"

namespace oe::model {

struct EmbedOptions {
  AttentionMode attention = AttentionMode::Bidirectional;
  // Prompt layout; start from Model::prompt_defaults() and override.
  text::PromptOptions prompts;
  // Longest token sequence; 0 = the config's max_position_embeddings. Longer items are truncated (the user text
  // is cut, the closing "<|im_end|>\n" kept) and flagged.
  int64_t max_tokens = 0;
};

struct EmbedRequest {
  text::Role role = text::Role::Query;
  std::string text;
};

// What the model sees for one item; dumped by --dump-inputs.
struct PreparedInput {
  std::vector<int64_t> input_ids;     // [n_tokens]
  std::vector<int64_t> position_ids;  // [3, n_tokens] (rows T, H, W)
  bool truncated = false;
  int64_t original_tokens = 0;        // before truncation
  int64_t n_tokens() const { return static_cast<int64_t>(input_ids.size()); }
};

struct Embedding {
  std::vector<float> vector;  // [out_dim], unit length
  int64_t n_tokens = 0;
  bool truncated = false;
};

class Embedder {
 public:
  Embedder(std::shared_ptr<const Model> model, EmbedOptions options);

  // Renders and tokenizes one item. InvalidInput for bad UTF-8 and the like.
  PreparedInput prepare(const EmbedRequest& request) const;
  // Embeds several prepared items in ONE decoder pass: items are packed one after another as attention segments
  // (no padding), so each vector equals the one computed alone. `last_hidden` (optional) receives the final
  // hidden states [Σ n_tokens, d_model]; `observer` sees the residual stream after each layer.
  std::vector<Embedding> embed_prepared(const std::vector<PreparedInput>& items,
                                        std::vector<float>* last_hidden = nullptr,
                                        const LayerObserver& observer = {}) const;
  Embedding embed(const EmbedRequest& request) const;

  const Model& model() const { return *model_; }
  const EmbedOptions& options() const { return options_; }
  int64_t max_tokens() const;

 private:
  std::shared_ptr<const Model> model_;
  EmbedOptions options_;
  std::vector<int64_t> tail_ids_;  // tokens of the closing "<|im_end|>\n"
};

// Writes what the model sees for one item, in the Hugging Face shapes, so another implementation can be fed the
// same inputs: `dir`/input_ids.npy (int64 [1, S]) and `dir`/position_ids.npy (int64 [3, 1, S]). Creates `dir`.
void write_prepared_input(const std::filesystem::path& dir, const PreparedInput& input);

// Text-only positions: all three rows equal 0..n-1 (thinker spec §8.1).
std::vector<int64_t> text_position_ids(int64_t n_tokens);

}  // namespace oe::model
