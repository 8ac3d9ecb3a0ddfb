// omni-embed demo: embeds a few queries and documents (texts and two drawn pictures) and prints their cosine similarity matrix, with the real
// model when it is in the Hugging Face cache (or --model), otherwise with a random-weight test model, saying so.
#include <cstdio>
#include <cstdlib>

#include "common.h"
#include "core/error.h"
#include "core/threads.h"
#include "core/timer.h"
#include "io/hub.h"
#include "io/hub_download.h"
#include "model/embedder.h"
#include "pipeline/encoder.h"
#include "model/test_model.h"

namespace oe::cli {
namespace {

namespace fs = std::filesystem;

struct DemoArgs {
  ModelArgs model;
  bool no_download = false;
};

// Simple pictures drawn in memory (no files shipped): a red disc on white, and blue and yellow vertical stripes.
media::RgbImage demo_picture(bool disc) {
  media::RgbImage im;
  im.width = im.height = 224;
  im.pixels.resize(static_cast<size_t>(im.width * im.height * 3));
  for (int64_t y = 0; y < im.height; ++y)
    for (int64_t x = 0; x < im.width; ++x) {
      uint8_t* p = im.pixels.data() + (y * im.width + x) * 3;
      const bool inside = (x - 112) * (x - 112) + (y - 112) * (y - 112) < 80 * 80;
      const bool stripe = (x / 28) % 2 == 0;
      if (disc) {
        p[0] = 255;
        p[1] = p[2] = inside ? 0 : 255;
      } else {
        p[0] = p[1] = stripe ? 0 : 240;
        p[2] = stripe ? 200 : 0;
      }
    }
  return im;
}

fs::path demo_test_model() {
  const fs::path dir = model::test_models_dir() / "tiny";
  if (!fs::exists(dir / "config.json")) {
    model::TestModelOptions o;
    model::write_test_model(dir, o);
  }
  return dir;
}

int run_demo(DemoArgs a) {
  bool real = true;
  std::string why = "not in the local Hugging Face cache";
  try {
    a.model.model = io::resolve_model_path(a.model.model, a.model.revision).string();
  } catch (const InvalidInput&) {
    if (a.model.model != DEFAULT_MODEL) throw;
    if (!a.no_download) {
      try {
        std::fprintf(stderr, "demo: %s is not in the local Hugging Face cache; trying to download it (~9.4 GB)\n",
                     DEFAULT_MODEL);
        a.model.model = io::download_model(DEFAULT_MODEL, a.model.revision).string();
      } catch (const Error& d) {
        why = fmt::format("not in the local Hugging Face cache and could not be downloaded ({})", d.what());
      }
    }
  }
  if (!fs::exists(fs::path(a.model.model) / "config.json")) {
    real = false;
    a.model.model = demo_test_model().string();
    std::printf("NOTE: %s is %s,\n"
                "      so this demo runs on a RANDOM-WEIGHT test model (%s):\n"
                "      the plumbing is real, the scores are meaningless. To use the real model, run\n"
                "      `omni-embed download %s` where the Hub can be reached, or pass --model FOLDER.\n\n",
                DEFAULT_MODEL, why.c_str(), a.model.model.c_str(), DEFAULT_MODEL);
  }
  Timer load;
  auto m = load_model(a.model);
  std::printf("model: %s (%s, %d threads, loaded in %.1f s)%s\n\n", a.model.model.c_str(),
              kernels::compute_name(m->compute()), num_threads(), load.seconds(), real ? "" : " [random weights]");
  // The model card's defaults (pipeline/options.h).
  const pipeline::Encoder encoder(m, pipeline::EmbedOptions{});
  const model::Embedder& e = encoder.embedder();
  const std::vector<std::string> queries = {"Drawing of a cat", "Drawing of a guitar", "Man walking down the street",
                                            "A red circle"};
  const std::vector<std::string> docs = {
      "A pencil sketch of a cat curled up asleep on a windowsill.",
      "An acoustic guitar drawn in ink, with six strings and a round sound hole.",
      "A man in a grey coat walks along a busy city street at dusk."};
  std::vector<model::Embedding> qv, dv;
  Timer t;
  int64_t tokens = 0;
  for (const auto& q : queries) qv.push_back(e.embed({text::Role::Query, q})), tokens += qv.back().n_tokens;
  for (const auto& d : docs) dv.push_back(e.embed({text::Role::Document, d})), tokens += dv.back().n_tokens;
  const std::vector<std::string> pictures = {"[image] a red disc on white, 224x224",
                                             "[image] blue and yellow vertical stripes, 224x224"};
  for (bool disc : {true, false}) {
    auto p = e.prepare(text::Role::Document, "", {demo_picture(disc)});
    dv.push_back(e.embed_prepared({p}).front());
    tokens += dv.back().n_tokens;
  }
  const double secs = t.seconds();
  std::vector<std::string> labels = docs;
  labels.insert(labels.end(), pictures.begin(), pictures.end());
  std::printf("cosine similarity (rows: queries, columns: documents)\n%-30s", "");
  for (size_t j = 0; j < labels.size(); ++j) std::printf("   doc %zu", j + 1);
  std::printf("\n");
  for (size_t i = 0; i < queries.size(); ++i) {
    std::printf("%-30s", queries[i].c_str());
    for (size_t j = 0; j < labels.size(); ++j) {
      double s = 0;
      for (size_t k = 0; k < qv[i].vector.size(); ++k) s += static_cast<double>(qv[i].vector[k]) * dv[j].vector[k];
      std::printf("  %6.4f", s);
    }
    std::printf("\n");
  }
  std::printf("\n");
  for (size_t j = 0; j < labels.size(); ++j) std::printf("doc %zu: %s\n", j + 1, labels[j].c_str());
  std::printf("\n%zu items, %lld tokens embedded in %.2f s (%.0f tokens/s)\n", queries.size() + labels.size(),
              static_cast<long long>(tokens), secs, static_cast<double>(tokens) / secs);
  return 0;
}

}  // namespace

VerbRunner register_demo(CLI::App& app) {
  auto a = std::make_shared<DemoArgs>();
  auto* sub = app.add_subcommand("demo", "Embed a few queries and documents and print the similarity matrix");
  add_model_options(*sub, a->model);
  sub->add_flag("--no-download", a->no_download, "Do not try to download the real model when it is not cached");
  return [a] { return run_demo(*a); };
}

}  // namespace oe::cli
