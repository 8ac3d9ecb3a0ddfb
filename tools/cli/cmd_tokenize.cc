// omni-embed tokenize: the token ids (and pieces) of a text, raw or in the embedding prompt layout.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "common.h"
#include "core/error.h"
#include "io/hub.h"
#include "model/model.h"
#include "text/prompt.h"
#include "text/tokenizer.h"

namespace oe::cli {
namespace {

struct TokenizeArgs {
  std::string model = DEFAULT_MODEL;
  std::string revision = "main";
  std::string text;
  std::string role = "raw";
};

int run_tokenize(const TokenizeArgs& a) {
  auto dir = io::resolve_model_path(a.model, a.revision);
  auto tok = text::Tokenizer::from_file(dir / "tokenizer.json");
  std::string s = a.text;
  if (a.role != "raw") {
    text::PromptOptions po;
    model::read_sentence_transformers_prompts(dir, po);
    s = text::render_text_prompt(text::parse_role(a.role), a.text, po);
  }
  auto ids = tok.encode(s);
  nlohmann::json pieces = nlohmann::json::array();
  for (int32_t id : ids) pieces.push_back(tok.id_to_token(id));
  nlohmann::json out{{"n_tokens", ids.size()}, {"input_ids", ids}, {"pieces", pieces}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

}  // namespace

VerbRunner register_tokenize(CLI::App& app) {
  auto a = std::make_shared<TokenizeArgs>();
  auto* sub = app.add_subcommand("tokenize", "Print the token ids of a text (raw, or in the query/document layout)");
  sub->add_option("text", a->text, "The text")->required();
  sub->add_option("--model", a->model, "Checkpoint folder or Hugging Face id")->capture_default_str();
  sub->add_option("--revision", a->revision, "Hub revision")->capture_default_str();
  sub->add_option("--role", a->role, "raw, query or document")->check(CLI::IsMember({"raw", "query", "document"}))
      ->capture_default_str();
  return [a] { return run_tokenize(*a); };
}

}  // namespace oe::cli
