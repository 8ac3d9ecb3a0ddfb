#include "pipeline/encoder.h"

namespace oe::pipeline {

Encoder::Encoder(std::shared_ptr<const model::Model> model, EmbedOptions options)
    : model_(std::move(model)), options_(std::move(options)), embedder_(model_, options_.model) {}

}  // namespace oe::pipeline
