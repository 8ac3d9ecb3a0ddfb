#include <gtest/gtest.h>

#include "core/error.h"
#include "model/embedder.h"
#include "test_util.h"

namespace oe::model {
namespace {

std::unique_ptr<Embedder> make_embedder(const char* model, kernels::Compute compute, int64_t max_tokens = 0) {
  LoadOptions lo;
  lo.compute = compute;
  auto m = Model::load(testing::test_model(model), lo);
  EmbedOptions eo;
  eo.max_tokens = max_tokens;
  return std::make_unique<Embedder>(m, eo);
}

TEST(Embedder, PromptLayoutIsTheChatTemplateWithPrefixes) {
  auto e = make_embedder("tiny-f32", kernels::Compute::F32);
  const auto& tok = e->model().tokenizer();
  auto p = e->prepare({text::Role::Query, "hello"});
  std::vector<int32_t> expected = tok.encode(
      "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nquery: hello<|im_end|>\n");
  ASSERT_EQ(p.input_ids.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(p.input_ids[i], expected[i]);
  EXPECT_EQ(p.input_ids.front(), tok.token_to_id("<|im_start|>"));
  EXPECT_EQ(p.position_ids.size(), 3 * p.input_ids.size());
  auto d = e->prepare({text::Role::Document, "hello"});
  EXPECT_NE(d.input_ids, p.input_ids);  // "passage: " instead of "query: "
}

TEST(Embedder, VectorsAreUnitLength) {
  auto e = make_embedder("tiny-bf16", kernels::Compute::BF16);
  auto v = e->embed({text::Role::Query, "unit length"}).vector;
  ASSERT_EQ(v.size(), 64u);
  double n = 0;
  for (float x : v) n += static_cast<double>(x) * x;
  EXPECT_NEAR(n, 1.0, 1e-5);
}

TEST(Embedder, BothCheckpointLayoutsGiveIdenticalVectors) {
  auto flat = make_embedder("tiny-f32", kernels::Compute::F32);
  auto nested = make_embedder("tiny-f32-qwen", kernels::Compute::F32);
  for (const char* t : {"same weights, other names", "a second text"}) {
    auto a = flat->embed({text::Role::Document, t}).vector;
    auto b = nested->embed({text::Role::Document, t}).vector;
    EXPECT_EQ(a, b) << t;
  }
}

TEST(Embedder, PackedBatchEqualsOneByOne) {
  for (auto compute : {kernels::Compute::F32, kernels::Compute::BF16}) {
    auto e = make_embedder("tiny-bf16", compute);
    std::vector<EmbedRequest> reqs = {{text::Role::Query, "short"},
                                      {text::Role::Document, "a much longer document text with many more tokens in it"},
                                      {text::Role::Query, "x"}};
    std::vector<PreparedInput> prepared;
    for (const auto& r : reqs) prepared.push_back(e->prepare(r));
    auto batch = e->embed_prepared(prepared);
    ASSERT_EQ(batch.size(), reqs.size());
    for (size_t i = 0; i < reqs.size(); ++i) {
      auto single = e->embed_prepared({prepared[i]}).front();
      EXPECT_EQ(batch[i].n_tokens, single.n_tokens);
      // Rows of a matmul do not depend on the other rows; only the blocking of oneDNN may change with M.
      EXPECT_GE(testing::cosine(batch[i].vector, single.vector), 0.9999999) << i;
    }
  }
}

TEST(Embedder, AttentionModeMatters) {
  LoadOptions lo;
  lo.compute = kernels::Compute::F32;
  auto m = Model::load(testing::test_model("tiny-f32"), lo);
  EmbedOptions bi, causal;
  causal.attention = AttentionMode::Causal;
  auto a = Embedder(m, bi).embed({text::Role::Query, "direction"}).vector;
  auto b = Embedder(m, causal).embed({text::Role::Query, "direction"}).vector;
  EXPECT_LT(testing::cosine(a, b), 0.9999);
}

TEST(Embedder, LongInputsAreTruncatedKeepingTheClosingTokens) {
  auto e = make_embedder("tiny-f32", kernels::Compute::F32, /*max_tokens=*/40);
  std::string text;
  for (int i = 0; i < 100; ++i) text += "word ";
  auto p = e->prepare({text::Role::Document, text});
  EXPECT_TRUE(p.truncated);
  EXPECT_EQ(p.n_tokens(), 40);
  EXPECT_GT(p.original_tokens, 100);
  const auto& tok = e->model().tokenizer();
  EXPECT_EQ(p.input_ids[38], tok.token_to_id("<|im_end|>"));
  EXPECT_EQ(p.position_ids[3 * 40 - 1], 39);
  auto v = e->embed_prepared({p}).front();
  EXPECT_TRUE(v.truncated);
}

TEST(Embedder, InvalidUtf8IsAClearError) {
  auto e = make_embedder("tiny-f32", kernels::Compute::F32);
  try {
    e->prepare({text::Role::Query, std::string("bad \xff byte")});
    FAIL() << "no error";
  } catch (const InvalidInput& err) {
    EXPECT_NE(std::string(err.what()).find("UTF-8"), std::string::npos) << err.what();
  }
}

}  // namespace
}  // namespace oe::model

namespace oe::model {
namespace {

TEST(Embedder, EmptyQueryIsAClearErrorButAnEmptyDocumentIsAllowed) {
  auto e = make_embedder("tiny-f32", kernels::Compute::F32);
  EXPECT_THROW(e->prepare({text::Role::Query, ""}), InvalidInput);
  auto d = e->embed({text::Role::Document, ""});  // "passage: " alone, as the reference renders a media-less document
  EXPECT_GT(d.n_tokens, 10);
}

}  // namespace
}  // namespace oe::model
