// The text decoder of model/text_decoder.h as a trainable function of its LoRA parameters: the same forward
// (transformers' Qwen2_5OmniThinkerTextModel with the embedding model's bidirectional attention), with each targeted
// projection replaced by PEFT's LoRA layer, followed by the embedding's masked mean and L2 normalisation, and its
// backward down to the LoRA parameters. Base weights are frozen fp32 copies; activations are checkpointed per layer
// (only each layer's input is kept; its inner activations are recomputed during the backward), so memory grows with
// n_layers · n_tokens · d_model, not with everything the layers compute.
#pragma once

#include <cstdint>
#include <vector>

#include "model/embedder.h"
#include "model/lora.h"
#include "model/model.h"

namespace oe::train {

// LoRA dropout (PEFT applies it to the LoRA branch's input only). The mask of one (layer, module) is a pure function
// of (seed, step, layer, module, element), so the backward's recomputation draws the same mask as the forward.
struct Dropout {
  double p = 0;
  uint64_t seed = 0;
  int64_t step = 0;
};

// What a forward keeps for the backward.
struct Tape {
  std::vector<std::vector<float>> layer_inputs;  // [n_layers][n_tokens · d_model]
  std::vector<float> last;                       // the residual stream after the last layer
  std::vector<float> final_inv;                  // 1/rms of the final norm, per token
  std::vector<float> hidden;                     // after the final norm [n_tokens, d_model]
  std::vector<float> vectors;                    // [n_segments, d_model], unit length
  std::vector<float> norms;                      // ‖mean‖ per segment
};

class TrainableDecoder {
 public:
  // Reads the decoder's weights of `model`'s checkpoint as fp32 (any dtype the checkpoint has): 4 bytes a
  // parameter. InvalidInput naming the tensor where one is missing or misshapen.
  explicit TrainableDecoder(const model::Model& model);

  // Embeddings [n_segments, d_model] of the batch's segments (bidirectional attention within each), with the
  // adapter applied (null: the base model). With a tape, keeps what backward needs.
  std::vector<float> forward(const model::DecoderBatch& batch, const model::LoraAdapter* adapter, const Dropout& dropout,
                             Tape* tape) const;

  // Given dL/dvectors [n_segments, d_model], ACCUMULATES dL/d(LoRA parameters) into `grad` (shaped like the adapter).
  void backward(const model::DecoderBatch& batch, const model::LoraAdapter& adapter, const Dropout& dropout,
                const Tape& tape, const float* dvectors, model::LoraAdapter* grad) const;

  const model::TextConfig& config() const { return config_; }

 private:
  struct Layer {
    std::vector<float> input_norm, post_norm;
    std::vector<float> w[model::LORA_MODULES];  // q, k, v, o, gate, up, down: [n_out, n_in]
    std::vector<float> bq, bk, bv;
  };
  struct Acts;  // one layer's inner activations
  void layer_forward(int64_t il, const model::DecoderBatch& batch, const float* cos, const float* sin,
                     const model::LoraAdapter* adapter, const Dropout& dropout, float* x, Acts* acts) const;

  model::TextConfig config_;
  std::vector<Layer> layers_;
  std::vector<float> final_norm_;
};

}  // namespace oe::train
