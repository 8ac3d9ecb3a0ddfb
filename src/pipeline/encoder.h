// A loaded model with one set of options: what every front end holds to turn items into vectors. The options are
// validated and resolved once (the Embedder takes the model's part), so the two can never disagree.
#pragma once

#include <memory>
#include <string>

#include "model/embedder.h"
#include "pipeline/options.h"

namespace oe::pipeline {

class Encoder {
 public:
  // InvalidInput for options no item could be embedded with.
  Encoder(std::shared_ptr<const model::Model> model, EmbedOptions options);

  const model::Model& model() const { return *model_; }
  const std::shared_ptr<const model::Model>& model_ptr() const { return model_; }
  const EmbedOptions& options() const { return options_; }
  const model::Embedder& embedder() const { return embedder_; }
  // What an index records of these options (EmbedOptions::recorded_json on this model).
  std::string recorded_json() const { return options_.recorded_json(*model_); }

 private:
  std::shared_ptr<const model::Model> model_;
  EmbedOptions options_;
  model::Embedder embedder_;
};

}  // namespace oe::pipeline
