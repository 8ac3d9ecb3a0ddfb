// omni-embed: one binary, one verb per file (cmd_*.cc).
#include <cstdio>
#include <map>
#include <new>

#include "common.h"
#include "core/error.h"

int main(int argc, char** argv) {
  CLI::App app{"omni-embed: multimodal embeddings with Omni-Embed-Nemotron, natively on the CPU"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("omni-embed ") + OE_VERSION);
  std::map<std::string, oe::cli::VerbRunner> verbs;
  verbs["embed"] = oe::cli::register_embed(app);
  verbs["inspect"] = oe::cli::register_inspect(app);
  verbs["make-test-model"] = oe::cli::register_make_test_model(app);
  verbs["tokenize"] = oe::cli::register_tokenize(app);
  verbs["demo"] = oe::cli::register_demo(app);
  verbs["download"] = oe::cli::register_download(app);
  verbs["eval"] = oe::cli::register_eval(app);
  verbs["index"] = oe::cli::register_index(app);
  verbs["search"] = oe::cli::register_search(app);
  verbs["serve"] = oe::cli::register_serve(app);
  verbs["merge-adapter"] = oe::cli::register_merge_adapter(app);
  verbs["mine"] = oe::cli::register_mine(app);
  verbs["train"] = oe::cli::register_train(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    for (auto* sub : app.get_subcommands()) return verbs.at(sub->get_name())();
  } catch (const oe::Error& e) {
    std::fprintf(stderr, "omni-embed: error: %s\n", e.what());
    return e.kind() == oe::ErrorKind::Internal ? 70 : 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "omni-embed: error: out of memory (lower --batch-tokens, the image or video budgets, or the "
                         "clip length; or free memory)\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "omni-embed: internal error: %s\n", e.what());
    return 70;
  }
  return 0;
}
