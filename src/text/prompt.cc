#include "text/prompt.h"

#include "core/error.h"

namespace oe::text {

const char* role_name(Role r) { return r == Role::Query ? "query" : "document"; }

Role parse_role(std::string_view s) {
  if (s == "query") return Role::Query;
  if (s == "document" || s == "passage" || s == "doc") return Role::Document;
  throw InvalidInput(fmt::format("unknown role '{}': expected \"query\" or \"document\"", s));
}

ChatParts chat_parts(const PromptOptions& options) {
  ChatParts p;
  p.head = "<|im_start|>system\n" + options.system_prompt + "<|im_end|>\n<|im_start|>user\n";
  p.tail = "<|im_end|>\n";
  return p;
}

std::string render_text_prompt(Role role, std::string_view text, const PromptOptions& options) {
  ChatParts p = chat_parts(options);
  std::string out = p.head;
  out += options.prefix(role);
  out += text;
  out += p.tail;
  return out;
}

}  // namespace oe::text
