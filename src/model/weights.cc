#include "model/weights.h"

#include <cstring>

#include "core/error.h"

namespace oe::model {

const io::TensorInfo& WeightTable::get(const std::string& name, const Shape& shape) {
  std::string full = prefix_ + name;
  if (!ckpt_.has(full))
    throw InvalidInput(fmt::format("missing tensor \"{}\" (expected shape {}) in {}", full, shape_str(shape),
                                   ckpt_.path().string()));
  const io::TensorInfo& t = ckpt_.get(full);
  if (t.shape != shape)
    throw InvalidInput(fmt::format("tensor \"{}\" has shape {}, expected {} (from config.json)", full,
                                   shape_str(t.shape), shape_str(shape)));
  if (t.dtype != DType::F32 && t.dtype != DType::BF16 && t.dtype != DType::F16)
    throw Unsupported(fmt::format("tensor \"{}\" has dtype {}; weights must be F32, BF16 or F16", full,
                                  dtype_name(t.dtype)));
  taken_.insert(full);
  return t;
}

std::vector<float> WeightTable::floats(const std::string& name, const Shape& shape, kernels::Compute compute) {
  const io::TensorInfo& t = get(name, shape);
  std::vector<float> out(static_cast<size_t>(shape_numel(shape)));
  convert_to_f32(t.data, t.dtype, out.size(), out.data());
  if (compute == kernels::Compute::BF16) round_bf16_inplace(out.data(), out.size());
  return out;
}

kernels::PackedLinear WeightTable::linear(const std::vector<std::string>& weight_names,
                                          const std::vector<Shape>& shapes,
                                          const std::vector<std::string>& bias_names, kernels::Compute compute,
                                          bool gated, const std::vector<const LoraWeights*>& lora,
                                          double lora_scale) {
  OE_CHECK(weight_names.size() == shapes.size() && !shapes.empty());
  OE_CHECK(lora.empty() || lora.size() == weight_names.size());
  bool adapted = false;
  for (const LoraWeights* l : lora) adapted |= l && !l->empty();
  OE_CHECK(!gated || (shapes.size() == 2 && shapes[0] == shapes[1]), "a gated layer stacks two equal parts");
  OE_CHECK(bias_names.empty() || bias_names.size() == weight_names.size());
  const int64_t n_in = shapes[0][1];
  int64_t n_out = 0;
  std::vector<const io::TensorInfo*> parts;
  for (size_t i = 0; i < shapes.size(); ++i) {
    parts.push_back(&get(weight_names[i], shapes[i]));
    n_out += shapes[i][0];
  }
  std::vector<float> bias;
  if (!bias_names.empty()) {
    for (size_t i = 0; i < bias_names.size(); ++i) {
      if (bias_names[i].empty()) {  // a part without bias (the audio tower's k projection)
        bias.insert(bias.end(), static_cast<size_t>(shapes[i][0]), 0.0f);
        continue;
      }
      auto b = floats(bias_names[i], {shapes[i][0]}, compute);
      bias.insert(bias.end(), b.begin(), b.end());
    }
  }
  const void* bias_ptr = bias.empty() ? nullptr : bias.data();
  kernels::PackedLinear packed;
  bool same_dtype = true;
  for (auto* p : parts) same_dtype &= p->dtype == parts[0]->dtype;
  if (parts.size() == 1 && !adapted) {
    packed = kernels::PackedLinear(parts[0]->data, parts[0]->dtype, n_out, n_in, bias_ptr, DType::F32, compute, bf16_gemm_, gated);
  } else if (same_dtype && !adapted) {
    // Stack the parts in their stored dtype (a transient copy of this one weight), then pack.
    size_t esz = dtype_size(parts[0]->dtype), off = 0;
    auto stacked = aligned_array<uint8_t>(static_cast<size_t>(n_out * n_in) * esz);
    for (auto* p : parts) {
      std::memcpy(stacked.get() + off, p->data, p->nbytes);
      off += p->nbytes;
    }
    packed = kernels::PackedLinear(stacked.get(), parts[0]->dtype, n_out, n_in, bias_ptr, DType::F32, compute, bf16_gemm_, gated);
  } else {
    std::vector<float> stacked(static_cast<size_t>(n_out * n_in));
    size_t off = 0;
    for (size_t i = 0; i < parts.size(); ++i) {
      const io::TensorInfo* p = parts[i];
      size_t n = p->nbytes / dtype_size(p->dtype);
      convert_to_f32(p->data, p->dtype, n, stacked.data() + off);
      if (adapted && lora[i] && !lora[i]->empty()) {
        OE_CHECK(lora[i]->n_out == shapes[i][0] && lora[i]->n_in == shapes[i][1], "LoRA weights of another shape");
        add_lora_delta(*lora[i], lora_scale, stacked.data() + off);
      }
      off += n;
    }
    packed = kernels::PackedLinear(stacked.data(), DType::F32, n_out, n_in, bias_ptr, DType::F32, compute, bf16_gemm_, gated);
  }
  for (size_t i = 0; i < parts.size(); ++i) ckpt_.release(prefix_ + weight_names[i]);
  return packed;
}

void WeightTable::check_no_extra(const std::string& scope) const {
  std::vector<std::string> extra;
  for (const auto& name : ckpt_.names()) {
    if (name.rfind(prefix_ + scope, 0) == 0 && !taken_.count(name)) extra.push_back(name);
  }
  if (!extra.empty()) {
    if (extra.size() > 5) extra.resize(5), extra.push_back("...");
    throw InvalidInput(fmt::format("unexpected tensors for this config in {}: {} (does config.json match the weights?)",
                                   ckpt_.path().string(), fmt::join(extra, ", ")));
  }
}

}  // namespace oe::model
