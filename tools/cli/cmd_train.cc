// omni-embed train: LoRA fine-tuning of the text decoder with InfoNCE over mined hard negatives (src/train).
#include <cstdio>
#include <sstream>

#include "common.h"
#include "core/error.h"
#include "core/log.h"
#include "pipeline/encoder.h"
#include "train/trainer.h"

namespace oe::cli {
namespace {

struct TrainArgs {
  ModelArgs model;
  pipeline::EmbedOptions options;
  train::TrainOptions train;
  std::string data, out, targets = "q,k,v,o,gate,up,down";
  int64_t log_every = 10;
};

std::string duration(double s) {
  const auto t = static_cast<int64_t>(s + 0.5);
  return t >= 3600 ? fmt::format("{}h{:02}m", t / 3600, t / 60 % 60) : fmt::format("{}m{:02}s", t / 60, t % 60);
}

int run(TrainArgs& a) {
  a.train.data = a.data;
  a.train.out = a.out;
  a.train.lora.targets.clear();
  std::stringstream ss(a.targets);
  for (std::string t; std::getline(ss, t, ',');)
    if (!t.empty()) a.train.lora.targets.push_back(model::parse_lora_module(t));
  a.options.validate();
  if (!a.model.adapter.empty())
    throw InvalidInput("train starts from the base weights and writes the adapter to --out; --adapter is for the "
                       "verbs that embed (continue a run with --resume)");
  const pipeline::Encoder encoder(load_model(a.model), a.options.for_queries());
  Progress bar("training", 0);
  const auto summary = train::train(encoder, a.train, [&](const train::TrainProgress& p) {
    for (const auto& e : p.evals) {
      bar.clear();
      log_info("held-out {} after step {}: nDCG@10 {:.4f}, Recall@10 {:.4f} over {} queries ({:.1f} s)",
               a.train.eval_split, e.step, e.ndcg10, e.recall10, e.queries, e.seconds);
    }
    if (!p.stepped) return;  // the evaluation before the first step
    const std::string line = fmt::format("step {}/{} epoch {} loss {:.4f} acc {:.2f} lr {:.2e} |g| {:.3f} "
                                         "{:.0f} tok/s ETA {}{}",
                                         p.step, p.total_steps, p.epoch + 1, p.loss, p.accuracy, p.lr, p.grad_norm,
                                         p.tokens_per_second, duration(p.eta), p.saved ? " (saved)" : "");
    bar.set_total(p.total_steps);
    bar.update(p.step, fmt::format("loss {:.4f}", p.loss));
    if (p.step % a.log_every == 0 || p.saved || p.step == 1) {
      bar.clear();
      log_info("{}", line);
    }
  });
  bar.finish();
  log_info("trained {} LoRA parameters on {} examples: steps {}..{} of {}, loss {:.4f} -> {:.4f}, {} tokens in {}; "
           "adapter in {}{}",
           summary.parameters, summary.examples, summary.start_step + 1, summary.steps, summary.total_steps,
           summary.first_loss, summary.last_loss, summary.tokens, duration(summary.seconds), a.out,
           summary.finished ? "" : " (stopped early: --resume continues)");
  return 0;
}

}  // namespace

VerbRunner register_train(CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  a->model.dtype = "f32";  // training computes in fp32; the towers' outputs and token embeddings then are fp32 too
  a->model.decoder_layers = false;  // the trainable decoder reads the layers from the checkpoint itself
  CLI::App* sub = app.add_subcommand(
      "train", "Fine-tune the text decoder with LoRA on query/positive/hard-negative examples (`mine` writes them); "
               "the adapter is saved in PEFT's layout");
  add_model_options(*sub, a->model);
  add_embed_options(*sub, a->options);
  sub->add_option("--data", a->data, "Training examples, JSON lines: {\"query\", \"positive\", \"negatives\"}")
      ->required()
      ->check(CLI::ExistingFile);
  sub->add_option("--out", a->out, "Adapter folder to write (and the training state, for --resume)")->required();
  sub->add_option("--lora-r", a->train.lora.r, "LoRA rank")->capture_default_str();
  sub->add_option("--lora-alpha", a->train.lora.alpha, "LoRA alpha (scale = alpha / r)")->capture_default_str();
  sub->add_option("--lora-dropout", a->train.lora.dropout, "Dropout on the LoRA branch's input")
      ->capture_default_str();
  sub->add_option("--lora-targets", a->targets, "Decoder projections to adapt, comma-separated: q,k,v,o,gate,up,down")
      ->capture_default_str();
  sub->add_option("--lr", a->train.adam.lr, "Peak learning rate (AdamW)")->capture_default_str();
  sub->add_option("--weight-decay", a->train.adam.weight_decay, "AdamW's decoupled weight decay")
      ->capture_default_str();
  sub->add_option("--warmup", a->train.warmup, "Fraction of the steps with a linear warm-up; cosine decay after")
      ->capture_default_str();
  sub->add_option("--temperature", a->train.temperature, "InfoNCE temperature")->capture_default_str();
  sub->add_option("--max-grad-norm", a->train.max_grad_norm, "Clip the gradient norm to this (0: no clipping)")
      ->capture_default_str();
  sub->add_option("--batch", a->train.batch, "Examples per micro-batch (in-batch negatives come from it)")
      ->capture_default_str();
  sub->add_option("--accumulate", a->train.accumulate, "Micro-batches per optimizer step")->capture_default_str();
  sub->add_option("--epochs", a->train.epochs, "Passes over the data")->capture_default_str();
  sub->add_option("--max-steps", a->train.max_steps, "Optimizer steps (0: as many as --epochs give)")
      ->capture_default_str();
  sub->add_option("--negatives", a->train.negatives, "Hard negatives used per example (-1: all the line has)")
      ->capture_default_str();
  sub->add_option("--save-every", a->train.save_every, "Save the adapter and the training state every N steps (0: "
                                                       "at the end)")
      ->capture_default_str();
  sub->add_option("--seed", a->train.seed, "Seed of the LoRA initialisation, the order and the dropout")
      ->capture_default_str();
  sub->add_flag("--resume", a->train.resume, "Continue the run saved in --out");
  sub->add_option("--stop-after", a->train.stop_after,
                  "Stop (and save) after N steps of this invocation; --resume continues (training in sessions)")
      ->capture_default_str();
  sub->add_option("--eval-dataset", a->train.eval_dataset,
                  "A BEIR-format folder to evaluate the adapter on (nDCG@10) before training, every --eval-every "
                  "steps and at the end")
      ->check(CLI::ExistingDirectory);
  sub->add_option("--eval-split", a->train.eval_split, "Which qrels/SPLIT.tsv of --eval-dataset")->capture_default_str();
  sub->add_option("--eval-every", a->train.eval_every, "Steps between held-out evaluations (0: before and after)")
      ->capture_default_str();
  sub->add_option("--log-every", a->log_every, "Print a progress line every N steps")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  return [a] { return run(*a); };
}

}  // namespace oe::cli
