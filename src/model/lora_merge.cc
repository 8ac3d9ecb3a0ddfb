// merge_lora_checkpoint: the checkpoint is streamed tensor by tensor through io::write_checkpoint, so merging the
// real 9 GB model holds one tensor (and its fp32 copy while it is adapted) in memory at a time.
#include "model/lora_merge.h"

#include <unistd.h>

#include <cstring>
#include <map>
#include <vector>

#include "core/error.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "model/lora.h"

namespace oe::model {

namespace fs = std::filesystem;

namespace {

// The output folder must not hold anything yet (a merge never overwrites a checkpoint).
void check_out_dir(const fs::path& out_dir) {
  if (!fs::exists(out_dir)) return;
  if (!fs::is_directory(out_dir))
    throw InvalidInput(fmt::format("--out {} is a file; give a new folder", out_dir.string()));
  if (!fs::is_empty(out_dir))
    throw InvalidInput(fmt::format("--out {} is not empty; give a new or empty folder", out_dir.string()));
}

bool is_weight_file(const fs::path& p) {
  const std::string name = p.filename().string();
  return p.extension() == ".safetensors" || name == "model.safetensors.index.json";
}

// Every file of `from` but the weights, folders included (1_Pooling/config.json, ...); links are followed (a Hub
// cache snapshot links its files into blobs/).
void copy_other_files(const fs::path& from, const fs::path& to) {
  for (auto it = fs::recursive_directory_iterator(from); it != fs::recursive_directory_iterator(); ++it) {
    const fs::path rel = fs::relative(it->path(), from);
    if (it->is_directory()) {
      if (rel.filename().string().rfind('.', 0) == 0) {  // .cache, .git: not part of the checkpoint
        it.disable_recursion_pending();
        continue;
      }
      fs::create_directories(to / rel);
    } else if (it->is_regular_file() && !is_weight_file(rel) && rel.filename().string().rfind('.', 0) != 0) {
      fs::create_directories((to / rel).parent_path());
      fs::copy_file(it->path(), to / rel, fs::copy_options::overwrite_existing);
    }
  }
}

// The adapted decoder weights by checkpoint tensor name.
std::map<std::string, const LoraWeights*> adapted_tensors(const LoraAdapter& adapter, const std::string& prefix) {
  std::map<std::string, const LoraWeights*> out;
  for (size_t il = 0; il < adapter.layers.size(); ++il)
    for (LoraModule m : adapter.config.targets) {
      const bool attn = m == LoraModule::Q || m == LoraModule::K || m == LoraModule::V || m == LoraModule::O;
      out[fmt::format("{}model.layers.{}.{}.{}.weight", prefix, il, attn ? "self_attn" : "mlp", lora_module_name(m))] =
          &adapter.at(static_cast<int64_t>(il), m);
    }
  return out;
}

// W + scale · B · A of one tensor, written into `buffer` in the tensor's own dtype.
void write_adapted(const io::TensorInfo& t, const LoraWeights& lw, double scale, void* buffer) {
  if (t.shape != Shape{lw.n_out, lw.n_in})
    throw InvalidInput(fmt::format("tensor \"{}\" has shape {}, expected {} (from config.json)", t.name,
                                   shape_str(t.shape), shape_str({lw.n_out, lw.n_in})));
  if (t.dtype != DType::F32 && t.dtype != DType::BF16 && t.dtype != DType::F16)
    throw Unsupported(fmt::format("tensor \"{}\" has dtype {}; adapted weights must be F32, BF16 or F16", t.name,
                                  dtype_name(t.dtype)));
  const size_t n = static_cast<size_t>(lw.n_out * lw.n_in);
  std::vector<float> w(n);
  convert_to_f32(t.data, t.dtype, n, w.data());
  add_lora_delta(lw, scale, w.data());
  if (t.dtype == DType::F32) {
    std::memcpy(buffer, w.data(), n * sizeof(float));
  } else if (t.dtype == DType::BF16) {
    f32_to_bf16_array(w.data(), n, static_cast<bf16_t*>(buffer));
  } else {
    auto* out = static_cast<f16_t*>(buffer);
    for (size_t i = 0; i < n; ++i) out[i] = f32_to_f16(w[i]);
  }
}

}  // namespace

void merge_lora_checkpoint(const fs::path& model_dir, const fs::path& adapter_dir, const fs::path& out_dir,
                           const MergeOptions& options) {
  check_out_dir(out_dir);
  const ModelConfig config = with_context("loading config", [&] { return ModelConfig::load(model_dir); });
  const LoraAdapter adapter = with_context(fmt::format("loading adapter {}", adapter_dir.string()), [&] {
    return load_lora_adapter(adapter_dir, config.text, config.tensor_prefix);
  });
  const io::Checkpoint ckpt = io::Checkpoint::open(model_dir);
  const std::map<std::string, const LoraWeights*> adapted = adapted_tensors(adapter, config.tensor_prefix);
  for (const auto& [name, lw] : adapted)
    if (!ckpt.has(name))
      throw InvalidInput(fmt::format("the adapter targets \"{}\", which is not in {}", name, model_dir.string()));

  std::vector<io::TensorSpec> specs;
  uint64_t total = 0;
  for (const std::string& name : ckpt.names()) {
    const io::TensorInfo& t = ckpt.get(name);
    specs.push_back({name, t.dtype, t.shape});
    total += t.nbytes;
  }

  const fs::path abs_out = fs::absolute(out_dir).lexically_normal();
  const std::string rel = fs::absolute(abs_out).lexically_relative(fs::absolute(model_dir).lexically_normal()).string();
  if (!rel.empty() && rel.rfind("..", 0) != 0)
    throw InvalidInput(fmt::format("--out {} is inside the model folder {}; give a folder outside it",
                                   out_dir.string(), model_dir.string()));
  const fs::path tmp = abs_out.parent_path() / fmt::format("{}.tmp-{}", abs_out.filename().string(), ::getpid());
  std::error_code ec;
  fs::remove_all(tmp, ec);
  try {
    fs::create_directories(tmp);
    copy_other_files(model_dir, tmp);
    uint64_t done = 0;
    const double scale = adapter.config.scale();
    io::write_checkpoint(tmp, specs, [&](const io::TensorSpec& s, void* buffer) {
      const io::TensorInfo& t = ckpt.get(s.name);
      if (auto it = adapted.find(s.name); it != adapted.end())
        write_adapted(t, *it->second, scale, buffer);
      else
        std::memcpy(buffer, t.data, t.nbytes);
      ckpt.release(s.name);
      done += t.nbytes;
      if (options.progress) options.progress(done, total);
    }, options.max_shard_bytes);
    if (fs::exists(out_dir)) fs::remove(out_dir);  // the empty folder check_out_dir accepted
    fs::rename(tmp, abs_out);
  } catch (const fs::filesystem_error& e) {
    fs::remove_all(tmp, ec);
    throw IoError(fmt::format("writing {}: {}", out_dir.string(), e.what()));
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
}

}  // namespace oe::model
