// The trainable decoder (train/decoder.h) on the tiny fp32 checkpoint: its forward equals the inference path's
// vectors (without an adapter, and with one, against the model that merged the adapter at load), and the gradient of
// the whole InfoNCE loss with respect to the LoRA parameters equals central finite differences (relative norm error
// ≤ 1e-3), with and without dropout.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "common/run_command.h"
#include "common/temp_dir.h"
#include "test_util.h"
#include "io/npy.h"
#include "io/safetensors.h"
#include "model/embedder.h"
#include "train/backward.h"
#include "train/decoder.h"
#include "train/optimizer.h"

namespace oe::train {
namespace {

std::filesystem::path tiny() { return std::filesystem::path(OE_TEST_MODELS) / "tiny-f32"; }

std::shared_ptr<const model::Model> load(const std::filesystem::path& adapter = {}) {
  model::LoadOptions lo;
  lo.compute = kernels::Compute::F32;
  lo.adapter = adapter;
  return model::Model::load(tiny(), lo);
}

std::vector<model::PreparedInput> items(const model::Embedder& e) {
  std::vector<model::PreparedInput> out;
  out.push_back(e.prepare({text::Role::Query, "where do penguins live", {}, {}, {}}));
  out.push_back(e.prepare({text::Role::Query, "a recipe for bread", {}, {}, {}}));
  out.push_back(e.prepare({text::Role::Document, "Penguins live in the southern hemisphere, mostly Antarctica.", {}, {}, {}}));
  out.push_back(e.prepare({text::Role::Document, "Flour, water, salt and yeast, kneaded and baked.", {}, {}, {}}));
  out.push_back(e.prepare({text::Role::Document, "The stock market fell on Tuesday.", {}, {}, {}}));
  return out;
}

double cosine(const float* a, const float* b, int64_t n) { return testing::cosine(a, b, static_cast<size_t>(n)); }

model::LoraAdapter random_adapter(const model::TextConfig& c, int64_t r, uint64_t seed, float b_scale) {
  model::LoraConfig lc;
  lc.r = r;
  lc.alpha = 2.0 * static_cast<double>(r);
  model::LoraAdapter a = model::init_lora_adapter(lc, c, seed);
  std::mt19937_64 g(seed + 1);
  std::normal_distribution<float> nd(0.0f, b_scale);
  for (auto& layer : a.layers)
    for (auto& lw : layer)
      for (auto& x : lw.b) x = nd(g);
  return a;
}

model::LoraAdapter zeros_like(const model::LoraAdapter& a) {
  model::LoraAdapter z = a;
  for (auto& layer : z.layers)
    for (auto& lw : layer) {
      std::fill(lw.a.begin(), lw.a.end(), 0.0f);
      std::fill(lw.b.begin(), lw.b.end(), 0.0f);
    }
  return z;
}

TEST(TrainableDecoder, ForwardEqualsTheInferencePath) {
  auto m = load();
  model::Embedder e(m, {});
  auto prepared = items(e);
  TrainableDecoder dec(*m);
  const int64_t d = dec.config().d_model;
  const auto v = dec.forward(e.decoder_inputs(prepared), nullptr, {}, nullptr);
  const auto ref = e.embed_prepared(prepared);
  ASSERT_EQ(v.size(), ref.size() * static_cast<size_t>(d));
  for (size_t s = 0; s < ref.size(); ++s) {
    EXPECT_GT(cosine(v.data() + s * d, ref[s].vector.data(), d), 0.9999999) << "item " << s;
    for (int64_t j = 0; j < d; ++j) EXPECT_NEAR(v[s * d + j], ref[s].vector[static_cast<size_t>(j)], 2e-6);
  }
}

// A bf16 checkpoint: the projections are converted from the mapped bf16 tensors as they are used (exactly), so the
// forward still equals the inference path computing in fp32 on the same weights. A model loaded without its
// decoder layers (as train loads it) gives the same decoder inputs and refuses to run its own decoder.
TEST(TrainableDecoder, Bf16CheckpointAndAModelWithoutDecoderLayers) {
  model::LoadOptions lo;
  lo.compute = kernels::Compute::F32;
  auto m = model::Model::load(std::filesystem::path(OE_TEST_MODELS) / "tiny-bf16", lo);
  lo.decoder_layers = false;
  auto bare = model::Model::load(std::filesystem::path(OE_TEST_MODELS) / "tiny-bf16", lo);
  model::Embedder e(m, {}), eb(bare, {});
  auto prepared = items(e);
  TrainableDecoder dec(*bare);
  const int64_t d = dec.config().d_model;
  const model::DecoderBatch batch = eb.decoder_inputs(prepared);
  EXPECT_EQ(batch.embeds, e.decoder_inputs(prepared).embeds);
  const auto v = dec.forward(batch, nullptr, {}, nullptr);
  const auto ref = e.embed_prepared(prepared);
  for (size_t s = 0; s < ref.size(); ++s)
    EXPECT_GT(cosine(v.data() + s * d, ref[s].vector.data(), d), 0.9999999) << "item " << s;
  EXPECT_THROW(eb.embed_prepared(prepared), Error);
}

TEST(TrainableDecoder, AdapterForwardEqualsTheModelThatMergedIt) {
  auto base = load();
  TrainableDecoder dec(*base);
  const auto adapter = random_adapter(dec.config(), 4, 3, 0.05f);
  testing::TempDir tmp;
  model::save_lora_adapter(adapter, tmp.path() / "adapter", base->config().tensor_prefix);
  auto merged = load(tmp.path() / "adapter");
  model::Embedder eb(base, {}), em(merged, {});
  auto prepared = items(eb);
  const int64_t d = dec.config().d_model;
  const auto v = dec.forward(eb.decoder_inputs(prepared), &adapter, {}, nullptr);
  const auto v0 = dec.forward(eb.decoder_inputs(prepared), nullptr, {}, nullptr);
  const auto ref = em.embed_prepared(prepared);
  for (size_t s = 0; s < ref.size(); ++s) {
    EXPECT_GT(cosine(v.data() + s * d, ref[s].vector.data(), d), 0.999999) << "item " << s;
    // and the adapter does change the vector (the check above would otherwise prove nothing)
    EXPECT_LT(cosine(v.data() + s * d, v0.data() + s * d, d), 0.9999) << "item " << s;
  }
}

// L(adapter) = InfoNCE of the two queries against the three documents (positives 0 and 1).
struct LossFixture {
  std::shared_ptr<const model::Model> m = load();
  TrainableDecoder dec{*m};
  model::DecoderBatch batch;
  model::LoraAdapter adapter;
  int64_t d = 0;
  LossFixture() {
    model::Embedder e(m, {});
    batch = e.decoder_inputs(items(e));
    adapter = random_adapter(dec.config(), 4, 11, 0.2f);
    d = dec.config().d_model;
  }
  double loss(const Dropout& dr, model::LoraAdapter* grad = nullptr) {
    Tape tape;
    const auto v = dec.forward(batch, &adapter, dr, grad ? &tape : nullptr);
    InfoNce r = info_nce(v.data(), 2, v.data() + 2 * d, 3, d, {0, 1}, 0.05);
    if (grad) {
      std::vector<float> dv(v.size());
      std::copy(r.dq.begin(), r.dq.end(), dv.begin());
      std::copy(r.dp.begin(), r.dp.end(), dv.begin() + 2 * d);
      dec.backward(batch, adapter, dr, tape, dv.data(), grad);
    }
    return r.loss;
  }
};

double check_all_modules(LossFixture& f, const Dropout& dr) {
  model::LoraAdapter grad = zeros_like(f.adapter);
  f.loss(dr, &grad);
  double num = 0, den = 0;
  const double eps = 1e-2;
  std::mt19937_64 g(5);
  for (int64_t il = 0; il < f.dec.config().n_layers; ++il)
    for (auto mod : model::ALL_LORA_MODULES)
      for (int which = 0; which < 2; ++which) {
        auto& p = which == 0 ? f.adapter.at(il, mod).a : f.adapter.at(il, mod).b;
        auto& gp = which == 0 ? grad.at(il, mod).a : grad.at(il, mod).b;
        for (int probe = 0; probe < 3; ++probe) {
          const size_t i = static_cast<size_t>(g() % p.size());
          const float p0 = p[i];
          p[i] = static_cast<float>(p0 + eps);
          const double lp = f.loss(dr);
          p[i] = static_cast<float>(p0 - eps);
          const double lm = f.loss(dr);
          p[i] = p0;
          const double fd = (lp - lm) / (2 * eps);
          num += (fd - gp[i]) * (fd - gp[i]);
          den += static_cast<double>(gp[i]) * gp[i];
        }
      }
  EXPECT_GT(den, 1e-8);
  const double err = std::sqrt(num / den);
  std::printf("relative error of the LoRA gradient: %.3g over %d probes\n", err, 3 * 2 * model::LORA_MODULES *
              static_cast<int>(f.dec.config().n_layers));
  return err;
}

TEST(TrainableDecoder, LossGradientEqualsFiniteDifferences) {
  LossFixture f;
  EXPECT_LT(check_all_modules(f, {}), 1e-3);
}

TEST(TrainableDecoder, LossGradientWithDropoutEqualsFiniteDifferences) {
  LossFixture f;
  Dropout dr{0.3, 42, 7};  // the same masks in every evaluation: the loss is a deterministic function
  EXPECT_LT(check_all_modules(f, dr), 1e-3);
  // and dropout does change the loss (so the masks are applied)
  EXPECT_NE(f.loss(dr), f.loss({}));
}

// BF16 compute (the frozen products on the bf16 GEMMs): the loss and the LoRA gradients stay close to fp32's.
TEST(TrainableDecoder, Bf16GemmsGiveNearlyTheFp32LossAndGradients) {
  LossFixture f;
  model::LoraAdapter g32 = zeros_like(f.adapter), g16 = zeros_like(f.adapter);
  const double l32 = f.loss({}, &g32);
  TrainableDecoder bf16(*f.m, kernels::Compute::BF16);
  Tape tape;
  const auto v = bf16.forward(f.batch, &f.adapter, {}, &tape);
  InfoNce r = info_nce(v.data(), 2, v.data() + 2 * f.d, 3, f.d, {0, 1}, 0.05);
  std::vector<float> dv(v.size());
  std::copy(r.dq.begin(), r.dq.end(), dv.begin());
  std::copy(r.dp.begin(), r.dp.end(), dv.begin() + 2 * f.d);
  bf16.backward(f.batch, f.adapter, {}, tape, dv.data(), &g16);
  EXPECT_NE(r.loss, l32);  // the bf16 path is taken
  EXPECT_LT(std::abs(r.loss - l32) / l32, 2e-2) << r.loss << " vs " << l32;
  double ab = 0, aa = 0, bb = 0;
  auto p32 = parameter_tensors(g32), p16 = parameter_tensors(g16);
  for (size_t t = 0; t < p32.size(); ++t)
    for (size_t i = 0; i < p32[t]->size(); ++i) {
      const double x = (*p32[t])[i], y = (*p16[t])[i];
      ab += x * y;
      aa += x * x;
      bb += y * y;
    }
  const double cos = ab / std::sqrt(aa * bb);
  std::printf("bf16 vs fp32: loss %.6f vs %.6f, gradient cosine %.6f\n", r.loss, l32, cos);
  EXPECT_GT(cos, 0.99);
}

// One step's loss and every LoRA gradient against an independent implementation: torch autograd in float64 over a
// decoder written from the spec (tools/reference/lora_step.py), each item its own sequence.
TEST(TrainableDecoder, LossAndGradientsEqualTheTorchReference) {
  LossFixture f;
  model::LoraAdapter grad = zeros_like(f.adapter);
  const double loss = f.loss({}, &grad);
  testing::TempDir tmp;
  model::Embedder e(f.m, {});
  const auto prepared = items(e);
  for (size_t k = 0; k < prepared.size(); ++k)
    model::write_prepared_input(tmp.path() / "items" / std::to_string(k), prepared[k]);
  model::save_lora_adapter(f.adapter, tmp.path() / "adapter", f.m->config().tensor_prefix);
  const std::string cmd = fmt::format(
      "{} {}/tools/reference/lora_step.py --model {} --adapter {} --items {} --queries 2 --positives 0,1 "
      "--temperature 0.05 --out {}",
      OE_PYTHON, OE_SOURCE_DIR, tiny().string(), (tmp.path() / "adapter").string(), tmp.path().string(),
      (tmp.path() / "ref").string());
  std::string log;
  ASSERT_EQ(testing::run_command(cmd, &log), 0) << cmd << "\n" << log;
  const Tensor ref_loss = io::read_npy(tmp.path() / "ref" / "loss.npy");
  float rl = 0;
  ASSERT_EQ(ref_loss.numel(), 1);
  convert_to_f32(ref_loss.data(), ref_loss.dtype(), 1, &rl);
  EXPECT_LT(std::abs(loss - rl) / std::abs(rl), 1e-4) << loss << " vs " << rl;
  const io::Checkpoint ref = io::Checkpoint::open(tmp.path() / "ref" / "grads.safetensors");
  int checked = 0;
  double worst = 0;
  for (int64_t il = 0; il < f.dec.config().n_layers; ++il)
    for (auto mod : model::ALL_LORA_MODULES)
      for (char which : {'A', 'B'}) {
        const bool attn = mod == model::LoraModule::Q || mod == model::LoraModule::K || mod == model::LoraModule::V ||
                          mod == model::LoraModule::O;
        const std::string name = fmt::format("base_model.model.model.layers.{}.{}.{}.lora_{}.weight", il,
                                             attn ? "self_attn" : "mlp", model::lora_module_name(mod), which);
        const io::TensorInfo& t = ref.get(name);
        const auto& ours = which == 'A' ? grad.at(il, mod).a : grad.at(il, mod).b;
        ASSERT_EQ(static_cast<size_t>(shape_numel(t.shape)), ours.size()) << name;
        const auto* r = static_cast<const float*>(t.data);
        double num = 0, den = 0;
        for (size_t i = 0; i < ours.size(); ++i) {
          num += (static_cast<double>(ours[i]) - r[i]) * (static_cast<double>(ours[i]) - r[i]);
          den += static_cast<double>(r[i]) * r[i];
        }
        ASSERT_GT(den, 0.0) << name;
        worst = std::max(worst, std::sqrt(num / den));
        EXPECT_LT(std::sqrt(num / den), 1e-4) << name;
        ++checked;
      }
  EXPECT_EQ(checked, 2 * model::LORA_MODULES * f.dec.config().n_layers);
  std::printf("loss %.9f (reference %.9f); largest relative error of a LoRA gradient tensor %.3g\n", loss, rl, worst);
}

}  // namespace
}  // namespace oe::train
