// omni-embed download: fetches a model from the Hugging Face Hub into the local Hub cache (resumable).
#include <cstdio>

#include "common.h"
#include "core/timer.h"
#include "io/hub.h"
#include "io/hub_download.h"

namespace oe::cli {
namespace {

struct DownloadArgs {
  std::string model = DEFAULT_MODEL;
  std::string revision = "main";
  std::string endpoint;
};

int run_download(const DownloadArgs& a) {
  io::DownloadOptions o;
  o.endpoint = a.endpoint;
  std::string current;
  std::unique_ptr<Progress> progress;
  o.progress = [&](const std::string& file, int64_t done, int64_t total) {
    if (file != current) {
      if (progress) progress->finish();
      current = file;
      progress = std::make_unique<Progress>(file, 0);
    }
    progress->set_total(total > 0 ? total / (1 << 20) : 0);
    progress->update(done / (1 << 20), "MiB");
  };
  Timer t;
  std::string source;
  std::fprintf(stderr, "downloading %s (%s) into %s\n", a.model.c_str(), a.revision.c_str(),
               io::hf_hub_cache_dir(&source).string().c_str());
  auto snapshot = io::download_model(a.model, a.revision, o);
  if (progress) progress->finish();
  std::fprintf(stderr, "done in %.0f s\n", t.seconds());
  std::printf("%s\n", snapshot.string().c_str());
  return 0;
}

}  // namespace

VerbRunner register_download(CLI::App& app) {
  auto a = std::make_shared<DownloadArgs>();
  auto* sub = app.add_subcommand("download", "Download a model from the Hugging Face Hub into the local Hub cache");
  sub->add_option("model", a->model, "Hub id (owner/name)")->capture_default_str();
  sub->add_option("--revision", a->revision, "Branch, tag or commit")->capture_default_str();
  sub->add_option("--endpoint", a->endpoint, "Hub address (default: $HF_ENDPOINT, else https://huggingface.co)");
  return [a] { return run_download(*a); };
}

}  // namespace oe::cli
