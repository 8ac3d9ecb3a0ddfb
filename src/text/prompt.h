// The Qwen-Omni chat layout of one embedding item (spec omni-embed-nemotron.md §2 items 2 and 6; thinker spec §7.2):
//   <|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{prefix}{text}{media placeholders}<|im_end|>\n
// with no generation prompt. Mean pooling covers every token of it, so this text is part of the model's contract.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace oe::text {

enum class Role { Query, Document };

const char* role_name(Role r);
// "query" | "document" (also "passage", "doc"); InvalidInput otherwise.
Role parse_role(std::string_view s);

struct PromptOptions {
  // The chat template's default system turn, inserted when no system message is given.
  std::string system_prompt = "You are a helpful assistant.";
  // Role prefixes; the model folder's config_sentence_transformers.json overrides these defaults when present.
  std::string query_prefix = "query: ";
  std::string document_prefix = "passage: ";

  const std::string& prefix(Role r) const { return r == Role::Query ? query_prefix : document_prefix; }
};

// The parts of a rendered prompt: `head` + user content + `tail`, so a caller can truncate the user text alone.
struct ChatParts {
  std::string head;  // system turn and "<|im_start|>user\n"
  std::string tail;  // "<|im_end|>\n"
};
ChatParts chat_parts(const PromptOptions& options);

// The full prompt for a text item.
std::string render_text_prompt(Role role, std::string_view text, const PromptOptions& options);

}  // namespace oe::text
