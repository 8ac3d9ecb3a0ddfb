// `omni-embed mine` → `omni-embed train` → `omni-embed eval --adapter` end to end on the tiny random-weight
// checkpoint and a generated task (make_synonym_task.py) that an untrained model ranks near chance: training raises
// the held-out nDCG@10 clearly; perc-pos and naive top-k negatives are both reported. Also: a run stopped and
// resumed ends with the same adapter, byte for byte, as a run straight through; bad input is refused naming it.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "common/files.h"
#include "test_util.h"

namespace oe {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

std::string model() { return testing::test_model("tiny-f32").string(); }

testing::Outcome run(const TempDir& tmp, const std::string& args) {
  return testing::run_split(fmt::format("'{}' {}", OE_CLI, args), (tmp.path() / "stderr.txt").string());
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

fs::path make_task(const TempDir& tmp) {
  const fs::path task = tmp.path() / "task";
  std::string log;
  EXPECT_EQ(testing::run_command(fmt::format("{} {}/tests/train/make_synonym_task.py {}", OE_PYTHON, OE_SOURCE_DIR,
                                             task.string()),
                                 &log),
            0)
      << log;
  return task;
}

// The generated task's training pairs mined with the default filter: returns the pairs file.
std::string mined_pairs(const TempDir& tmp) {
  const fs::path task = make_task(tmp);
  const std::string data = (tmp.path() / "train.jsonl").string();
  const auto m = run(tmp, fmt::format("mine --model {} --dtype f32 --dataset {} --split train --out {}", model(),
                                      task.string(), data));
  EXPECT_EQ(m.rc, 0) << m.err;
  return data;
}

bool has_training_state(const fs::path& out) {
  return fs::exists(out / "trainer-state") || fs::exists(out / "trainer-state.old");
}

double ndcg10(const TempDir& tmp, const fs::path& task, const std::string& adapter, const std::string& cache) {
  const auto o = run(tmp, fmt::format("eval --model {} --dtype f32 --dataset {} --split test --cache {} --format json "
                                      "--k 10 {}",
                                      model(), task.string(), (tmp.path() / cache).string(),
                                      adapter.empty() ? "" : "--adapter " + adapter));
  EXPECT_EQ(o.rc, 0) << o.err;
  return nlohmann::json::parse(o.out)["modes"]["all"]["metrics"]["ndcg_cut_10"].get<double>();
}

const char* TRAIN_FLAGS = "--batch 16 --epochs 8 --lr 1e-3 --temperature 0.05 --lora-dropout 0 --log-every 1000";

TEST(TrainCli, TrainingRaisesHeldOutNdcg) {
  TempDir tmp;
  const fs::path task = make_task(tmp);
  const double base = ndcg10(tmp, task, "", "cache-base");
  std::map<std::string, double> trained;
  for (const std::string filter : {"perc-pos", "top-k"}) {
    const std::string data = (tmp.path() / (filter + ".jsonl")).string();
    auto m = run(tmp, fmt::format("mine --model {} --dtype f32 --dataset {} --split train --filter {} --out {} --cache {}",
                                  model(), task.string(), filter, data, (tmp.path() / "cache-mine").string()));
    ASSERT_EQ(m.rc, 0) << m.err;
    const std::string out = (tmp.path() / ("adapter-" + filter)).string();
    // The perc-pos run also evaluates the held-out split itself, before, midway and after.
    const std::string eval = filter == "perc-pos" ? fmt::format("--eval-dataset {} --eval-every 24", task.string()) : "";
    auto t = run(tmp, fmt::format("train --model {} --data {} --out {} {} {}", model(), data, out, TRAIN_FLAGS, eval));
    ASSERT_EQ(t.rc, 0) << t.err;
    EXPECT_NE(t.err.find("loss"), std::string::npos) << t.err;
    EXPECT_TRUE(fs::exists(fs::path(out) / "adapter_config.json"));
    trained[filter] = ndcg10(tmp, task, out, "cache-" + filter);
    if (!eval.empty()) {
      // before the first step: the untrained model's value; after the last: the saved adapter's
      EXPECT_NE(t.err.find(fmt::format("held-out test after step 0: nDCG@10 {:.4f}", base)), std::string::npos)
          << t.err;
      EXPECT_NE(t.err.find("held-out test after step 48:"), std::string::npos) << t.err;
      EXPECT_NE(t.err.find(fmt::format("held-out test after step 96: nDCG@10 {:.4f}", trained[filter])),
                std::string::npos)
          << t.err;
      EXPECT_FALSE(fs::exists(fs::path(out) / "eval-cache"));
    }
  }
  // The same run with the frozen products on the bf16 GEMMs, evaluated in bf16.
  const std::string out16 = (tmp.path() / "adapter-bf16").string();
  auto t16 = run(tmp, fmt::format("train --model {} --dtype bf16 --data {} --out {} {}", model(),
                                  (tmp.path() / "perc-pos.jsonl").string(), out16, TRAIN_FLAGS));
  ASSERT_EQ(t16.rc, 0) << t16.err;
  auto e16 = run(tmp, fmt::format("eval --model {} --dtype bf16 --dataset {} --split test --cache {} --format json "
                                  "--k 10 --adapter {}",
                                  model(), task.string(), (tmp.path() / "cache-bf16").string(), out16));
  ASSERT_EQ(e16.rc, 0) << e16.err;
  const double bf16 = nlohmann::json::parse(e16.out)["modes"]["all"]["metrics"]["ndcg_cut_10"].get<double>();
  // Reported either way: which negatives trained the better adapter on this task.
  std::printf("held-out nDCG@10: untrained %.4f, perc-pos negatives %.4f, top-k negatives %.4f, perc-pos in bf16 "
              "%.4f\n",
              base, trained["perc-pos"], trained["top-k"], bf16);
  EXPECT_GT(bf16, base + 0.2);
  EXPECT_LT(base, 0.2);
  EXPECT_GT(trained["perc-pos"], base + 0.2);
  EXPECT_GT(trained["top-k"], base + 0.2);
}

TEST(TrainCli, StoppedAndResumedEqualsStraightThrough) {
  TempDir tmp;
  const std::string data = mined_pairs(tmp);
  // Dropout on, so the masks of the resumed steps must be the same ones too; two micro-batches a step.
  const std::string flags = "--batch 8 --accumulate 2 --max-steps 6 --lora-dropout 0.1 --lr 1e-3 --seed 3";
  const fs::path straight = tmp.path() / "straight", parts = tmp.path() / "parts";
  auto a = run(tmp, fmt::format("train --model {} --data {} --out {} {}", model(), data, straight.string(), flags));
  ASSERT_EQ(a.rc, 0) << a.err;
  auto b = run(tmp, fmt::format("train --model {} --data {} --out {} {} --stop-after 4", model(), data,
                                parts.string(), flags));
  ASSERT_EQ(b.rc, 0) << b.err;
  EXPECT_NE(b.err.find("stopped early"), std::string::npos) << b.err;
  EXPECT_NE(slurp(straight / "adapter_model.safetensors"), slurp(parts / "adapter_model.safetensors"));
  auto c = run(tmp, fmt::format("train --model {} --data {} --out {} {} --resume", model(), data, parts.string(),
                                flags));
  ASSERT_EQ(c.rc, 0) << c.err;
  EXPECT_NE(c.err.find("steps 5..6 of 6"), std::string::npos) << c.err;
  EXPECT_EQ(slurp(straight / "adapter_model.safetensors"), slurp(parts / "adapter_model.safetensors"));
  EXPECT_EQ(slurp(straight / "trainer-state" / "optimizer.safetensors"),
            slurp(parts / "trainer-state" / "optimizer.safetensors"));

  // Resuming with other settings or other data is refused, naming what differs.
  auto d = run(tmp, fmt::format("train --model {} --data {} --out {} {} --resume --batch 4", model(), data,
                                parts.string(), "--accumulate 2 --max-steps 6 --lora-dropout 0.1 --lr 1e-3 --seed 3"));
  EXPECT_EQ(d.rc, 1);
  EXPECT_NE(d.err.find("batch"), std::string::npos) << d.err;
  testing::write_file(tmp.path() / "other.jsonl", slurp(data) + slurp(data));
  auto e = run(tmp, fmt::format("train --model {} --data {} --out {} {} --resume", model(),
                                (tmp.path() / "other.jsonl").string(), parts.string(), flags));
  EXPECT_EQ(e.rc, 1);
  EXPECT_NE(e.err.find("data_sha256"), std::string::npos) << e.err;
}

TEST(TrainCli, KilledAtAnyMomentResumesToTheSameAdapter) {
  TempDir tmp;
  const std::string data = mined_pairs(tmp);
  const std::string flags = "--batch 8 --max-steps 10 --save-every 1 --lora-dropout 0.1 --lr 1e-3 --seed 5";
  const fs::path straight = tmp.path() / "straight", killed = tmp.path() / "killed";
  auto a = run(tmp, fmt::format("train --model {} --data {} --out {} {}", model(), data, straight.string(), flags));
  ASSERT_EQ(a.rc, 0) << a.err;
  // SIGKILL at moments spread over loading, training steps and saves; each restart resumes from the last save.
  int kills = 0;
  for (double at : {0.4, 0.9, 1.3, 1.7, 2.2}) {
    const bool has_state = has_training_state(killed);
    auto k = testing::run_split(fmt::format("timeout -s KILL {} '{}' train --model {} --data {} --out {} {} {}", at,
                                            OE_CLI, model(), data, killed.string(), flags,
                                            has_state ? "--resume" : ""),
                                (tmp.path() / "stderr.txt").string());
    if (k.rc != 0) ++kills;
    if (k.rc == 0) break;  // finished before the kill
  }
  std::printf("killed %d times\n", kills);
  auto c = run(tmp, fmt::format("train --model {} --data {} --out {} {} {}", model(), data, killed.string(), flags,
                                has_training_state(killed) ? "--resume" : ""));
  ASSERT_EQ(c.rc, 0) << c.err;
  EXPECT_GT(kills, 0);
  EXPECT_EQ(slurp(straight / "adapter_model.safetensors"), slurp(killed / "adapter_model.safetensors"));

  // Starting afresh into a folder that holds a run is refused (a forgotten --resume must not overwrite it).
  auto d = run(tmp, fmt::format("train --model {} --data {} --out {} {}", model(), data, killed.string(), flags));
  EXPECT_EQ(d.rc, 1);
  EXPECT_NE(d.err.find("--resume continues it"), std::string::npos) << d.err;
}

// Media items train through the frozen towers (the rows they are embedded with): an image positive and an image
// query next to texts, paths relative to the data file.
TEST(TrainCli, ImageItemsTrain) {
  TempDir tmp;
  const fs::path demo = fs::path(OE_SOURCE_DIR) / "datasets" / "quality-demo" / "images";
  fs::copy_file(demo / "shape-red-circle-0.png", tmp.path() / "red.png");
  fs::copy_file(demo / "shape-blue-star-0.png", tmp.path() / "star.png");
  testing::write_file(tmp.path() / "d.jsonl",
                      "{\"query\": {\"text\": \"a red circle\"}, \"positive\": {\"image\": \"red.png\"}, "
                      "\"negatives\": [{\"image\": \"star.png\"}]}\n"
                      "{\"query\": {\"image\": \"star.png\"}, \"positive\": {\"text\": \"a blue star\"}}\n");
  const fs::path out = tmp.path() / "out";
  auto t = run(tmp, fmt::format("train --model {} --data {} --out {} --max-steps 3 --lr 1e-3 --log-every 1", model(),
                                (tmp.path() / "d.jsonl").string(), out.string()));
  ASSERT_EQ(t.rc, 0) << t.err;
  EXPECT_NE(t.err.find("step 3/3"), std::string::npos) << t.err;
  EXPECT_TRUE(fs::exists(out / "adapter_model.safetensors"));
}

TEST(TrainCli, BadInputIsRefusedNamingIt) {
  TempDir tmp;
  const fs::path out = tmp.path() / "out";
  const auto bad = [&](const std::string& content, const std::string& extra, const std::string& expect) {
    testing::write_file(tmp.path() / "d.jsonl", content);
    auto o = run(tmp, fmt::format("train --model {} --data {} --out {} {}", model(),
                                  (tmp.path() / "d.jsonl").string(), out.string(), extra));
    EXPECT_NE(o.rc, 0) << content << extra;
    EXPECT_NE(o.err.find(expect), std::string::npos) << "expected '" << expect << "' in: " << o.err;
  };
  const std::string ok = "{\"query\": {\"text\": \"a\"}, \"positive\": {\"text\": \"b\"}}\n";
  bad(ok + "{not json\n", "", "line 2: not valid JSON");
  bad(ok + "{\"query\": {\"text\": \"a\"}}\n", "", "line 2: \"positive\"");
  bad(ok + "{\"query\": {\"text\": \"a\"}, \"positive\": {\"text\": \"b\"}, \"negatives\": 3}\n", "",
      "line 2: \"negatives\"");
  bad(ok + "{\"query\": {\"text\": \"\"}, \"positive\": {\"text\": \"b\"}}\n", "", "line 2: an item with neither");
  bad(ok + "{\"query\": {\"text\": \"a\"}, \"positive\": {\"image\": \"missing.png\"}}\n", "", "line 2");
  bad("\n", "", "no training examples");
  bad(ok, "--lr -1", "--lr");
  bad(ok, "--lora-targets q,wrong", "wrong");
  bad(ok, "--lora-dropout 1", "--lora-dropout");
  bad(ok, "--temperature 0", "--temperature");
  bad(ok, "--resume", "no training state");
  bad(ok, fmt::format("--adapter {}", tmp.path().string()), "--adapter");
  EXPECT_FALSE(fs::exists(out / "adapter_model.safetensors"));
}

}  // namespace
}  // namespace oe
