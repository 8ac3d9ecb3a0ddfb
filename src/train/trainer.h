// Contrastive fine-tuning with LoRA (spec omni-embed-nemotron.md §5): InfoNCE over each query's positive, its mined
// hard negatives and every other document of the micro-batch (in-batch negatives), LoRA on the text decoder only
// (vision and audio towers frozen: they run as at inference, inside model::Embedder::decoder_inputs), bidirectional
// attention as at inference, AdamW with linear warm-up and cosine decay, gradient accumulation, activation
// checkpointing per decoder layer (train/decoder.h), resumable. The frozen projections' products run in the
// model's compute: fp32, or bf16 GEMMs (inputs rounded to bf16, fp32 accumulation) when the model was loaded in
// BF16; LoRA weights, their gradients, the optimizer state, attention, norms and the loss are always fp32.
//
// The training data is what `omni-embed mine` writes (train/mining.h), one example per line:
//   {"query": ITEM, "positive": ITEM, "negatives": [ITEM, ...], ...}
// ITEM in the JSON form of pipeline/item.h ("text", "image", "audio", "video"; relative media paths are relative
// to the file's folder); the query is embedded with the query role, the others with the document role.
//
// The output folder holds the adapter in PEFT's layout (model/lora.h), rewritten at every save, and
// OUT/trainer-state/ (the same adapter, the optimizer's moments and state.json), from which --resume continues.
// A save writes a new state folder and renames it into place, so a run killed at any point resumes from the last
// complete save.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "model/lora.h"
#include "pipeline/encoder.h"
#include "pipeline/item.h"
#include "train/optimizer.h"

namespace oe::train {

struct TrainExample {
  pipeline::EmbedItem query, positive;
  std::vector<pipeline::EmbedItem> negatives;
  int64_t line = 0;
};

// Reads a training file; InvalidInput naming FILE and line for a line that is not an example (not JSON, no query,
// no positive, an item with nothing to embed, negatives not a list). An empty file is an error.
std::vector<TrainExample> read_training_data(const std::filesystem::path& file);

struct TrainOptions {
  std::filesystem::path data;
  std::filesystem::path out;
  model::LoraConfig lora;
  AdamWOptions adam{1e-4, 0.9, 0.999, 1e-8, 0.0};
  double temperature = 0.02;   // τ of InfoNCE
  double warmup = 0.1;         // fraction of the optimizer steps spent warming up
  double max_grad_norm = 1.0;  // clip the gradient's norm to this (0: no clipping)
  int64_t batch = 8;           // examples per micro-batch: in-batch negatives come from the same micro-batch
  int64_t accumulate = 1;      // micro-batches per optimizer step
  int64_t epochs = 1;
  int64_t max_steps = 0;       // optimizer steps; 0: as many as the epochs give
  int64_t negatives = -1;      // hard negatives used per example (the first ones of the line); -1: all
  int64_t save_every = 0;      // optimizer steps between saves; 0: only at the end
  uint64_t seed = 0;           // LoRA initialisation, the examples' order and the dropout masks
  bool resume = false;         // continue from OUT/trainer-state
  int64_t stop_after = 0;      // stop after this many steps of this invocation, saving (--resume goes on); 0: none
  // Held-out evaluation: nDCG@10 (and the rest of eval's measures) of a BEIR-format dataset with the adapter as it
  // stands, before the first step, every eval_every steps (0: only then and at the end) and after the last step.
  // Embedded through the eval layer (eval/dataset.h) into a cache under OUT that is removed after each evaluation.
  std::filesystem::path eval_dataset;
  std::string eval_split = "test";
  int64_t eval_every = 0;
};

// One held-out evaluation during training.
struct HeldOutEval {
  int64_t step = 0;  // after this many optimizer steps
  double ndcg10 = 0, recall10 = 0;
  int64_t queries = 0;
  double seconds = 0;
};

struct TrainProgress {
  int64_t step = 0, total_steps = 0, epoch = 0;
  double loss = 0;             // mean over the step's micro-batches
  double accuracy = 0;         // share of the step's queries whose positive scored highest
  double lr = 0, grad_norm = 0;
  double tokens_per_second = 0, elapsed = 0, eta = 0;
  bool saved = false;
  bool stepped = true;             // false for the report of the evaluation before the first step
  std::vector<HeldOutEval> evals;  // evaluations made after this step (usually none)
};

struct TrainSummary {
  int64_t examples = 0, steps = 0, start_step = 0, total_steps = 0, tokens = 0;
  int64_t parameters = 0;
  bool finished = false;       // reached the last step (false: stopped by stop_after)
  double first_loss = 0, last_loss = 0, seconds = 0;
  std::vector<HeldOutEval> evals;
};

// Trains from the base weights of encoder's model (loaded without an adapter) with encoder's embedding options
// (prompts, token limit, media budgets). InvalidInput for bad options or data, naming them.
TrainSummary train(const pipeline::Encoder& encoder, const TrainOptions& options,
                   const std::function<void(const TrainProgress&)>& progress = {});

}  // namespace oe::train
