// The server's worker: jobs of several requests share forward passes and every vector equals the one embedded alone;
// the queue is bounded; a cancelled or expired job is dropped unrun; text and media go to their own lanes; a bad item
// fails its job's item, not the others.
#include "serve/worker.h"

#include <future>

#include <gtest/gtest.h>

#include "common/ffmpeg.h"
#include "common/temp_dir.h"
#include "pipeline/encoder.h"
#include "test_util.h"

namespace oe::serve {
namespace {

using Clock = std::chrono::steady_clock;

const pipeline::Encoder& encoder() {
  static const pipeline::Encoder e(model::Model::load(testing::test_model("tiny-f32"), {kernels::Compute::F32}),
                                   pipeline::EmbedOptions{});
  return e;
}

pipeline::EmbedItem text_item(const std::string& text) {
  pipeline::EmbedItem it;
  it.text = text;
  return it;
}

// A job whose result arrives through the returned future.
std::shared_ptr<Job> make_job(std::vector<pipeline::EmbedItem> items, std::future<JobResult>* result) {
  auto job = std::make_shared<Job>();
  job->encoder = &encoder();
  job->items = std::move(items);
  auto promise = std::make_shared<std::promise<JobResult>>();
  *result = promise->get_future();
  job->done = [promise](JobResult r) { promise->set_value(std::move(r)); };
  return job;
}

TEST(Worker, BatchedVectorsEqualOneAtATime) {
  const std::vector<std::string> texts = {"a", "second item", "a third, longer item of text", "four", "fifth one"};
  std::vector<RoundStats> rounds;
  std::mutex mutex;
  Worker worker({/*max_batch_tokens=*/4096, /*max_queue=*/64, /*max_round_items=*/512}, [&](const RoundStats& s) {
    std::lock_guard lock(mutex);
    rounds.push_back(s);
  });
  std::vector<std::future<JobResult>> results(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) ASSERT_TRUE(worker.submit(make_job({text_item(texts[i])}, &results[i])));
  for (size_t i = 0; i < texts.size(); ++i) {
    const JobResult r = results[i].get();
    ASSERT_TRUE(r.error.empty()) << r.error;
    ASSERT_EQ(r.items.size(), 1u);
    ASSERT_TRUE(r.items[0].ok()) << r.items[0].error;
    const model::Embedding alone = encoder().embedder().embed(text_item(texts[i]).request());
    const auto& v = r.items[0].vectors.front();
    EXPECT_EQ(v.n_tokens, alone.n_tokens);
    EXPECT_GE(testing::cosine(v.vector.data(), alone.vector.data(), v.vector.size()), 0.99999) << texts[i];
  }
  worker.stop();
  int64_t items = 0;
  for (const auto& s : rounds) {
    EXPECT_EQ(s.lane, Lane::Text);
    items += s.items;
  }
  EXPECT_EQ(items, static_cast<int64_t>(texts.size()));
}

TEST(Worker, ABadItemFailsAloneAndResultsKeepTheirOrder) {
  Worker worker({4096, 64, 512});
  pipeline::EmbedItem bad;
  bad.images = {"/nonexistent/picture.png"};
  std::future<JobResult> f;
  ASSERT_TRUE(worker.submit(make_job({text_item("x"), bad, text_item("y")}, &f)));
  const JobResult r = f.get();
  ASSERT_EQ(r.items.size(), 3u);
  EXPECT_TRUE(r.items[0].ok());
  EXPECT_FALSE(r.items[1].ok());
  EXPECT_NE(r.items[1].error.find("/nonexistent/picture.png"), std::string::npos) << r.items[1].error;
  EXPECT_TRUE(r.items[2].ok());
  EXPECT_EQ(r.items[2].item.text, "y");
}

TEST(Worker, MediaJobsRunOnTheirOwnLane) {
  pipeline::EmbedItem media;
  media.images = {"/nonexistent/picture.png"};
  std::future<JobResult> f;
  auto job = make_job({text_item("x"), media}, &f);
  EXPECT_EQ(job->lane(), Lane::Media);
  EXPECT_EQ(make_job({text_item("x")}, &f)->lane(), Lane::Text);
}

TEST(Worker, ALongVideoDoesNotHoldTextOrImages) {
  testing::TempDir tmp;
  const auto video = tmp / "long.mp4";
  ASSERT_TRUE(testing::ffmpeg(fmt::format("-f lavfi -i testsrc2=size=160x96:rate=25 -f lavfi -i sine=frequency=500 -t 30 "
                                          "-c:v libx264 -pix_fmt yuv420p -c:a aac '{}'", video.string())));
  ASSERT_TRUE(testing::ffmpeg(fmt::format("-f lavfi -i testsrc2=size=64x48 -frames:v 1 '{}'", (tmp / "a.png").string())));
  Worker worker({/*max_batch_tokens=*/8192, /*max_queue=*/64, /*max_round_items=*/512, /*media_threads=*/2});
  std::mutex mutex;
  std::vector<std::string> order;
  auto job = [&](pipeline::EmbedItem item, const std::string& name) {
    auto j = std::make_shared<Job>();
    j->encoder = &encoder();
    j->items = {std::move(item)};
    j->done = [&, name](JobResult r) {
      EXPECT_TRUE(r.items.at(0).ok()) << name << ": " << r.items.at(0).error;
      std::lock_guard lock(mutex);
      order.push_back(name);
    };
    return j;
  };
  pipeline::EmbedItem v, im;
  v.videos = {video};
  im.images = {tmp / "a.png"};
  ASSERT_TRUE(worker.submit(job(v, "video")));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the video's round has begun
  ASSERT_TRUE(worker.submit(job(text_item("short text"), "text")));
  ASSERT_TRUE(worker.submit(job(im, "image")));
  worker.stop();
  ASSERT_EQ(order.size(), 3u);
  EXPECT_EQ(order.back(), "video") << "the text and the image waited for the video";
}

TEST(Worker, TheQueueIsBoundedAndCancelledJobsAreDropped) {
  // One lane busy with a long job; the queue holds two more, the third is refused.
  Worker worker({/*max_batch_tokens=*/64, /*max_queue=*/2, /*max_round_items=*/1});
  std::vector<pipeline::EmbedItem> long_job;
  for (int i = 0; i < 300; ++i) long_job.push_back(text_item("an item that keeps the lane busy for a while " + std::to_string(i)));
  std::future<JobResult> busy, a, b, c;
  ASSERT_TRUE(worker.submit(make_job(long_job, &busy)));
  while (worker.running() == 0) std::this_thread::yield();
  auto cancelled = make_job({text_item("cancelled")}, &a);
  ASSERT_TRUE(worker.submit(cancelled));
  auto expired = make_job({text_item("expired")}, &b);
  expired->deadline = Clock::now();
  ASSERT_TRUE(worker.submit(expired));
  EXPECT_EQ(worker.queued(), 2);
  EXPECT_FALSE(worker.submit(make_job({text_item("refused")}, &c)));
  cancelled->cancelled = true;
  const JobResult ra = a.get(), rb = b.get();
  EXPECT_TRUE(ra.dropped);
  EXPECT_TRUE(ra.items.empty());
  EXPECT_TRUE(rb.dropped);
  EXPECT_EQ(busy.get().items.size(), 300u);
  EXPECT_EQ(worker.queued(), 0);
}

}  // namespace
}  // namespace oe::serve
