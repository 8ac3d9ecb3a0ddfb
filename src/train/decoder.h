// The text decoder of model/text_decoder.h as a trainable function of its LoRA parameters: the same forward
// (transformers' Qwen2_5OmniThinkerTextModel with the embedding model's bidirectional attention), with each targeted
// projection replaced by PEFT's LoRA layer, followed by the embedding's masked mean and L2 normalisation, and its
// backward down to the LoRA parameters. The frozen base weights stay in the memory-mapped checkpoint, in its dtype,
// and are converted to fp32 as each product needs them (exact for the BF16 and F16 a checkpoint holds; F32 is used
// in place), so the decoder adds no resident copy of its weights; activations are checkpointed per layer
// (only each layer's input is kept; its inner activations are recomputed during the backward), so memory grows with
// n_layers · n_tokens · d_model, not with everything the layers compute.
#pragma once

#include <cstdint>
#include <vector>

#include "io/safetensors.h"
#include "model/embedder.h"
#include "train/backward.h"
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
  // Opens `model`'s checkpoint and checks the decoder's tensors (InvalidInput naming one that is missing or
  // misshapen); the norms and biases are copied as fp32, the projections stay mapped.
  // compute BF16: the frozen projections are packed once, as W and as Wᵀ, for the bf16 GEMMs (2 bytes a parameter
  // each; inputs rounded to bf16, fp32 accumulation), instead of being converted to fp32 for each product; LoRA,
  // attention, norms and the loss stay fp32.
  explicit TrainableDecoder(const model::Model& model, kernels::Compute compute = kernels::Compute::F32);

  // Embeddings [n_segments, d_model] of the batch's segments (bidirectional attention within each), with the
  // adapter applied (null: the base model). With a tape, keeps what backward needs.
  std::vector<float> forward(const model::DecoderBatch& batch, const model::LoraAdapter* adapter, const Dropout& dropout,
                             Tape* tape) const;

  // Given dL/dvectors [n_segments, d_model], ACCUMULATES dL/d(LoRA parameters) into `grad` (shaped like the adapter).
  void backward(const model::DecoderBatch& batch, const model::LoraAdapter& adapter, const Dropout& dropout,
                const Tape& tape, const float* dvectors, model::LoraAdapter* grad) const;

  const model::TextConfig& config() const { return config_; }
  kernels::Compute compute() const { return compute_; }

 private:
  struct Layer {
    std::vector<float> input_norm, post_norm;
    const io::TensorInfo* w[model::LORA_MODULES] = {};  // q, k, v, o, gate, up, down: [n_out, n_in], mapped
    kernels::PackedLinear packed[model::LORA_MODULES], packed_t[model::LORA_MODULES];  // BF16 compute only
    std::vector<float> bq, bk, bv;
  };
  // The weight of (layer, module): packed (BF16), or fp32: the mapped tensor itself when it is F32, else converted
  // into scratch.
  FrozenWeight weight(int64_t il, model::LoraModule m, std::vector<float>& scratch) const;
  struct Acts;  // one layer's inner activations
  void layer_forward(int64_t il, const model::DecoderBatch& batch, const float* cos, const float* sin,
                     const model::LoraAdapter* adapter, const Dropout& dropout, float* x, Acts* acts) const;

  model::TextConfig config_;
  kernels::Compute compute_;
  io::Checkpoint ckpt_;
  std::vector<Layer> layers_;
  std::vector<float> final_norm_;
};

}  // namespace oe::train
