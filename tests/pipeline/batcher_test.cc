// The token-budget batcher: a group runs in the pending pass when it fits, the pass runs before a group that does
// not fit and right after it is full, a group larger than the budget runs alone, and every vector equals the one
// computed alone.
#include "pipeline/batcher.h"

#include <gtest/gtest.h>

#include "pipeline/encoder.h"
#include "pipeline/stream.h"
#include "pipeline/views.h"
#include "test_util.h"

namespace oe::pipeline {
namespace {

TEST(Batcher, PassesFollowTheBudgetAndVectorsEqualOneAtATime) {
  const Encoder encoder(model::Model::load(testing::test_model("tiny-f32"), {kernels::Compute::F32}), EmbedOptions{});
  auto input = [&](const std::string& text) {
    EmbedItem it;
    it.text = text;
    return prepare_views(encoder, it).front().input;
  };
  const model::PreparedInput a = input("first"), b = input("second item"), c = input("a third, longer item of text");
  const int64_t na = a.n_tokens(), nb = b.n_tokens(), nc = c.n_tokens();
  ASSERT_LT(nc, na + nb);  // c alone fits in a pass
  Batcher batcher(encoder.embedder(), na + nb);  // a and b fill one pass exactly
  std::vector<std::string> arrived;
  std::vector<model::Embedding> got(3);
  auto sink = [&](const char* name, size_t slot) {
    return [&, name, slot](std::vector<model::Embedding> v, double seconds) {
      ASSERT_EQ(v.size(), 1u);
      EXPECT_GE(seconds, 0.0);
      got[slot] = std::move(v.front());
      arrived.push_back(name);
    };
  };
  batcher.add({a}, sink("a", 0));
  EXPECT_EQ(batcher.pending_tokens(), na);
  EXPECT_TRUE(arrived.empty());
  batcher.add({b}, sink("b", 1));  // the pass is full: it runs
  EXPECT_EQ(arrived, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(batcher.pending_tokens(), 0);
  batcher.add({c}, sink("c", 2));
  EXPECT_EQ(batcher.pending_tokens(), nc);
  batcher.add({a, b, c}, [&](std::vector<model::Embedding> v, double) {  // larger than the budget: c's pass runs
    ASSERT_EQ(v.size(), 3u);                                              // first, then this group alone
    EXPECT_EQ(v[2].vector, got[2].vector);
    arrived.push_back("abc");
  });
  EXPECT_EQ(arrived, (std::vector<std::string>{"a", "b", "c", "abc"}));
  batcher.flush();  // nothing pending: no pass
  EXPECT_EQ(arrived.size(), 4u);
  const model::PreparedInput* inputs[] = {&a, &b, &c};
  for (size_t i = 0; i < 3; ++i)
    EXPECT_GE(testing::cosine(got[i].vector, encoder.embedder().embed_prepared({*inputs[i]}).front().vector), 0.9999999)
        << i;
}

// Results come out in input order, a bad item in its place, each as soon as everything before it is done.
TEST(ItemStream, ResultsKeepTheInputOrderAndBadItemsTheirPlace) {
  const Encoder encoder(model::Model::load(testing::test_model("tiny-f32"), {kernels::Compute::F32}), EmbedOptions{});
  std::vector<ItemResult> out;
  int prepared = 0;
  ItemStream stream(encoder, 4096, [&](const ItemResult& r) { out.push_back(r); },
                    [&](const ItemResult&, const PreparedView&) { ++prepared; });
  EmbedItem good;
  good.text = "a document";
  EmbedItem missing = good;
  missing.images = {"/nonexistent/picture.png"};
  stream.add(good);
  stream.add(missing);
  stream.add_error({}, "line 3: not valid JSON");
  stream.add(good);
  EXPECT_TRUE(out.empty());  // the first item waits for its pass, and the others for it
  stream.finish();
  ASSERT_EQ(out.size(), 4u);
  for (int64_t i = 0; i < 4; ++i) EXPECT_EQ(out[i].index, i);
  EXPECT_TRUE(out[0].ok());
  EXPECT_NE(out[1].error.find("/nonexistent/picture.png"), std::string::npos) << out[1].error;
  EXPECT_EQ(out[2].error, "line 3: not valid JSON");
  ASSERT_TRUE(out[3].ok());
  EXPECT_EQ(out[3].vectors.front().vector, out[0].vectors.front().vector);
  EXPECT_EQ(out[0].views, std::vector<View>{View::Whole});
  EXPECT_EQ(prepared, 2);
}

}  // namespace
}  // namespace oe::pipeline
