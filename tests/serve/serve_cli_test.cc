// `omni-embed serve` under hostile clients, on a random port with the tiny test model: every bad request is a clean
// 4xx (OpenAI's error body) or a closed connection, and the server keeps serving after each. Also: pipelined
// requests, slow-loris, clients leaving mid-request, and SIGTERM draining a request in flight.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <fstream>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/files.h"
#include "common/temp_dir.h"
#include "test_util.h"

namespace oe {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr const char* KEY = "sk-hostile-test";

// The binary serving the tiny model; stops it with SIGTERM when it goes away.
class ServerProcess {
 public:
  ServerProcess(const testing::TempDir& tmp, const std::string& extra = "") : log_(tmp / "serve.log") {
    fs::create_directories(tmp / "root");
    const std::string cmd =
        fmt::format("exec '{}' serve --model '{}' --dtype fp32 --port 0 --api-key {} --media-root '{}' --max-body-mb 1 "
                    "--read-timeout 2 {} 2>'{}'",
                    OE_CLI, testing::test_model("tiny-f32").string(), KEY, (tmp / "root").string(), extra, log_.string());
    pid_ = ::fork();
    if (pid_ == 0) {
      ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    const auto until = Clock::now() + std::chrono::seconds(60);
    while (Clock::now() < until) {
      std::ifstream in(log_);
      std::string line;
      bool ready = false;
      while (std::getline(in, line)) {
        const auto j = json::parse(line, nullptr, /*allow_exceptions=*/false);
        if (j.is_discarded() || !j.is_object()) continue;
        if (j.value("event", "") == "listening") port_ = j["port"].get<int>();
        if (j.value("event", "") == "ready") ready = true;
      }
      if (ready && port_ > 0) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "the server did not get ready:\n" << testing::read_file(log_);
  }
  ~ServerProcess() {
    if (pid_ > 0 && !waited_) {
      ::kill(pid_, SIGTERM);
      wait();
    }
  }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string log() const { return testing::read_file(log_); }
  // The exit status (-1 when it did not exit normally).
  int wait() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    waited_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  fs::path log_;
  pid_t pid_ = -1;
  int port_ = 0;
  bool waited_ = false;
};

// A raw TCP connection with a receive timeout.
class Conn {
 public:
  explicit Conn(int port, double timeout_seconds = 30) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    timeval tv{static_cast<time_t>(timeout_seconds), static_cast<suseconds_t>((timeout_seconds - static_cast<int>(timeout_seconds)) * 1e6)};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~Conn() { close(); }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  // false when the peer has closed (EPIPE, ECONNRESET).
  bool send(const std::string& bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return false;
      done += static_cast<size_t>(n);
    }
    return true;
  }
  // One response: {status, body}; status 0 when the connection closed (or timed out) before a whole response.
  std::pair<int, std::string> response() {
    size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos)
      if (!fill()) return {0, ""};
    const std::string head = buf_.substr(0, end);
    size_t length = 0;
    const auto cl = head.find("Content-Length: ");
    if (cl != std::string::npos) length = std::stoul(head.substr(cl + 16));
    while (buf_.size() < end + 4 + length)
      if (!fill()) return {0, ""};
    const int status = std::stoi(head.substr(9, 3));
    std::string body = buf_.substr(end + 4, length);
    buf_.erase(0, end + 4 + length);
    last_head_ = head;
    return {status, body};
  }
  // True when the server closes the connection (end of stream or reset) within the receive timeout.
  bool closed_by_peer() {
    char c;
    const ssize_t n = ::recv(fd_, &c, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
  }
  const std::string& last_head() const { return last_head_; }

 private:
  bool fill() {
    char tmp[65536];
    const ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }
  int fd_ = -1;
  std::string buf_, last_head_;
};

std::string post(const std::string& path, const std::string& body, const std::string& key = KEY,
                 const std::string& extra_headers = "") {
  return fmt::format("POST {} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{}{}Content-Length: {}\r\n\r\n{}",
                     path, key.empty() ? "" : fmt::format("Authorization: Bearer {}\r\n", key), extra_headers,
                     body.size(), body);
}

std::pair<int, std::string> request(int port, const std::string& raw) {
  Conn c(port);
  c.send(raw);
  return c.response();
}

// The answer is OpenAI's error shape with this status, and its message contains `text`.
void expect_error(const std::pair<int, std::string>& r, int status, const std::string& text) {
  EXPECT_EQ(r.first, status) << r.second;
  const auto j = json::parse(r.second, nullptr, false);
  ASSERT_TRUE(j.is_object() && j.contains("error")) << r.second;
  for (const char* k : {"message", "type", "param", "code"}) EXPECT_TRUE(j["error"].contains(k)) << k << r.second;
  EXPECT_NE(j["error"]["message"].get<std::string>().find(text), std::string::npos) << r.second;
}

// The server still embeds.
void expect_serving(int port) {
  const auto r = request(port, post("/v1/embeddings", R"({"input": "still here"})"));
  ASSERT_EQ(r.first, 200) << r.second;
  EXPECT_EQ(json::parse(r.second)["data"][0]["embedding"].size(), 64u);
}

// A PNG whose header claims 20000 × 10000 one-bit pixels: 25 KB that would decode to 200 M pixels.
std::string png_bomb() {
  const uint32_t w = 20000, h = 10000;
  std::string raw(static_cast<size_t>(h) * (1 + w / 8), '\0');
  uLongf n = compressBound(raw.size());
  std::string z(n, '\0');
  compress2(reinterpret_cast<Bytef*>(z.data()), &n, reinterpret_cast<const Bytef*>(raw.data()), raw.size(), 9);
  z.resize(n);
  auto be32 = [](uint32_t v) {
    return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
  };
  auto chunk = [&](const std::string& type, const std::string& data) {
    const std::string td = type + data;
    return be32(static_cast<uint32_t>(data.size())) + td +
           be32(static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(td.data()), static_cast<uInt>(td.size()))));
  };
  std::string ihdr = be32(w) + be32(h) + std::string{1, 0, 0, 0, 0};
  return std::string("\x89PNG\r\n\x1a\n", 8) + chunk("IHDR", ihdr) + chunk("IDAT", z) + chunk("IEND", "");
}

std::string b64(const std::string& bytes) {
  static const char* A = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    for (int s : {18, 12, 6, 0}) out += A[(v >> s) & 63];
  }
  if (i + 1 == bytes.size()) {
    const uint32_t v = uint8_t(bytes[i]) << 16;
    out += std::string{A[(v >> 18) & 63], A[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == bytes.size()) {
    const uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8);
    out += std::string{A[(v >> 18) & 63], A[(v >> 12) & 63], A[(v >> 6) & 63], '='};
  }
  return out;
}

std::string image_input(const std::string& url) {
  return json{{"input", json::array({json{{"content", json::array({json{{"type", "image_url"}, {"image_url", {{"url", url}}}}})}}})}}.dump();
}

TEST(ServeHostile, BadRequestsAreClean4xxAndTheServerKeepsServing) {
  testing::TempDir tmp;
  ServerProcess server(tmp);
  const int port = server.port();
  ASSERT_GT(port, 0);
  testing::write_file(tmp / "outside.png", "secret");
  fs::create_symlink(tmp / "outside.png", tmp / "root/link.png");

  expect_error(request(port, post("/v1/embeddings", "{\"input\": [\"a\",")), 400, "not valid JSON");
  expect_serving(port);
  expect_error(request(port, post("/v1/embeddings", R"({"input": {"text": 5}})")), 400, "input");
  expect_error(request(port, post("/v1/embeddings", R"({"input": ["a", 7]})")), 400, "input[1]");
  expect_error(request(port, post("/v1/embeddings", R"({"input": "a", "encoding_format": 3})")), 400, "encoding_format");
  json many = json::array();
  for (int i = 0; i < 10000; ++i) many.push_back("item");
  expect_error(request(port, post("/v1/embeddings", json{{"input", many}}.dump())), 400, "10000 inputs, at most 2048");
  expect_error(request(port, post("/v1/embeddings", image_input("data:image/png;base64," + b64("this is not an image")))),
               400, "input[0]: input[0].content[0].image_url: not an image");
  const auto bomb = png_bomb();
  ASSERT_LT(bomb.size(), 100'000u);
  expect_error(request(port, post("/v1/embeddings", image_input("data:image/png;base64," + b64(bomb)))), 400,
               "pixels");
  expect_error(request(port, post("/v1/embeddings", image_input("../outside.png"))), 400, "\"..\" is not allowed");
  expect_error(request(port, post("/v1/embeddings", image_input((tmp / "outside.png").string()))), 400,
               "leads out of the media root");
  expect_error(request(port, post("/v1/embeddings", image_input("link.png"))), 400, "leads out of the media root");
  expect_error(request(port, post("/v1/embeddings", R"({"input": "a"})", /*key=*/"")), 401, "missing API key");
  expect_error(request(port, post("/v1/embeddings", R"({"input": "a"})", "sk-wrong")), 401, "not valid");
  expect_error(request(port, post("/v1/search", R"({"query": "a"})")), 404, "--index");
  expect_error(request(port, "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n"), 404, "no route");
  expect_error(request(port, "GET /v1/embeddings HTTP/1.1\r\nHost: x\r\n\r\n"), 405, "takes POST");
  expect_error(request(port, "GARBAGE\r\n\r\n"), 400, "not valid HTTP");
  expect_error(request(port, "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n"), 431,
               "headers are larger");
  expect_serving(port);
  // No temporary media file is left behind (they are removed with their requests).
  const std::string log = server.log();
  EXPECT_EQ(log.find("/omni-embed-serve-"), std::string::npos) << "a server path leaked into the log";
}

TEST(ServeHostile, BodiesOverTheLimitAreRefusedBeforeAndWhileStreaming) {
  testing::TempDir tmp;
  ServerProcess server(tmp);
  const int port = server.port();
  // Content-Length over the limit: answered before any of the body is sent.
  {
    Conn c(port, 5);
    c.send(fmt::format("POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: {}\r\n\r\n",
                       KEY, 2 << 20));
    expect_error(c.response(), 413, "larger than 1048576 bytes");
  }
  // Chunked: refused once the chunks pass the limit (the answer, or the connection closing).
  {
    Conn c(port, 5);
    c.send(fmt::format("POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n",
                       KEY));
    const std::string chunk = fmt::format("{:x}\r\n{}\r\n", 65536, std::string(65536, ' '));
    bool refused_while_sending = false;
    for (int i = 0; i < 64 && !refused_while_sending; ++i) refused_while_sending = !c.send(chunk);
    const auto r = c.response();
    EXPECT_TRUE(r.first == 413 || (r.first == 0 && refused_while_sending)) << r.first << r.second;
  }
  expect_serving(port);
}

TEST(ServeHostile, SlowLorisAndDepartingClientsDoNotHoldTheServer) {
  testing::TempDir tmp;
  ServerProcess server(tmp);
  const int port = server.port();
  // A client trickling its headers is disconnected after --read-timeout (2 s), while others are served.
  const auto start = Clock::now();
  Conn slow(port, 10);
  std::thread trickle([&] {
    const std::string head = "POST /v1/embeddings HTTP/1.1\r\nHost: x\r\n";
    for (char ch : head) {
      if (!slow.send(std::string(1, ch))) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  });
  expect_serving(port);
  EXPECT_TRUE(slow.closed_by_peer());
  const double waited = std::chrono::duration<double>(Clock::now() - start).count();
  trickle.join();
  EXPECT_LT(waited, 6.0);
  EXPECT_GT(waited, 1.5);
  // A client that leaves in the middle of its body, and one that leaves while its request is embedded.
  {
    Conn c(port);
    c.send(fmt::format("POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: 1000\r\n\r\n{{\"inp",
                       KEY));
  }
  {
    json many = json::array();
    for (int i = 0; i < 2000; ++i) many.push_back("a text that takes the model a moment " + std::to_string(i));
    Conn c(port);
    c.send(post("/v1/embeddings", json{{"input", many}}.dump()));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  expect_serving(port);
  // The request whose client left is logged as such (499), not answered.
  const auto until = Clock::now() + std::chrono::seconds(30);
  while (server.log().find("\"status\":499") == std::string::npos && Clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_NE(server.log().find("\"status\":499"), std::string::npos) << server.log();
}

TEST(ServeHostile, PipelinedRequestsAreAnsweredInOrder) {
  testing::TempDir tmp;
  ServerProcess server(tmp);
  Conn c(server.port());
  c.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n" + post("/v1/embeddings", R"({"input": ["one", "two"]})") +
         "GET /v1/nothing HTTP/1.1\r\nHost: x\r\n\r\n" + post("/v1/embeddings", R"({"input": "three"})"));
  auto r = c.response();
  EXPECT_EQ(r.first, 200);
  EXPECT_EQ(json::parse(r.second)["status"], "ok");
  r = c.response();
  ASSERT_EQ(r.first, 200) << r.second;
  EXPECT_EQ(json::parse(r.second)["data"].size(), 2u);
  r = c.response();
  EXPECT_EQ(r.first, 404);
  r = c.response();
  ASSERT_EQ(r.first, 200) << r.second;
  EXPECT_EQ(json::parse(r.second)["data"].size(), 1u);
}

TEST(ServeHostile, SigtermDrainsTheRequestInFlight) {
  testing::TempDir tmp;
  ServerProcess server(tmp);
  json many = json::array();
  for (int i = 0; i < 300; ++i) many.push_back("drained text " + std::to_string(i));
  Conn c(server.port());
  c.send(post("/v1/embeddings", json{{"input", many}}.dump()));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ::kill(server.pid(), SIGTERM);
  const auto r = c.response();
  ASSERT_EQ(r.first, 200) << r.second;
  EXPECT_EQ(json::parse(r.second)["data"].size(), 300u);
  EXPECT_EQ(server.wait(), 0) << server.log();
  EXPECT_NE(server.log().find("\"event\":\"stopped\""), std::string::npos);
}

TEST(ServeHostile, HealthReadyModelsAndMetrics) {
  testing::TempDir tmp;
  ServerProcess server(tmp);
  const int port = server.port();
  EXPECT_EQ(request(port, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n").first, 200);
  EXPECT_EQ(request(port, "GET /ready HTTP/1.1\r\nHost: x\r\n\r\n").first, 200);
  expect_error(request(port, "GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n"), 401, "missing API key");
  const auto models = request(port, fmt::format("GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n", KEY));
  ASSERT_EQ(models.first, 200);
  EXPECT_EQ(json::parse(models.second)["data"][0]["object"], "model");
  expect_serving(port);
  request(port, post("/v1/embeddings", "{"));
  const auto m = request(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_EQ(m.first, 200);
  for (const char* line : {"omni_embed_requests_total{route=\"/v1/embeddings\",status=\"200\"} 1",
                           "omni_embed_errors_total{route=\"/v1/embeddings\",status=\"400\"} 1",
                           "omni_embed_request_seconds_count{modality=\"text\"} 1", "omni_embed_queue_depth 0",
                           "omni_embed_batch_items_count{lane=\"text\"} 1", "omni_embed_ready 1",
                           "omni_embed_model_load_seconds"})
    EXPECT_NE(m.second.find(line), std::string::npos) << line << "\n" << m.second;
  // One JSON log line per request, with its id, route, status, items, tokens and latency (the last one is written
  // right after its answer).
  auto request_lines = [&] {
    std::vector<json> out;
    std::istringstream log(server.log());
    for (std::string l; std::getline(log, l);) {
      const auto j = json::parse(l, nullptr, false);
      if (!j.is_discarded() && j.value("event", "") == "request") out.push_back(j);
    }
    return out;
  };
  const auto until = Clock::now() + std::chrono::seconds(5);
  while (request_lines().size() < 7 && Clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const auto lines = request_lines();
  EXPECT_EQ(lines.size(), 7u) << server.log();
  for (const auto& j : lines)
    for (const char* k : {"id", "route", "status", "items", "tokens", "latency_ms"}) EXPECT_TRUE(j.contains(k)) << j.dump();
}

TEST(ServeHostile, FullQueueIs429AndTooManyConnections503) {
  testing::TempDir tmp;
  ServerProcess server(tmp, "--max-queue 1 --max-connections 3");
  const int port = server.port();
  json many = json::array();
  // About a second of work for the tiny model (400 words each).
  std::string words;
  for (int i = 0; i < 400; ++i) words += "word ";
  for (int i = 0; i < 200; ++i) many.push_back(words + std::to_string(i));
  Conn busy(port), queued(port);
  busy.send(post("/v1/embeddings", json{{"input", many}}.dump()));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the lane takes it
  queued.send(post("/v1/embeddings", R"({"input": "queued"})"));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  {
    Conn refused(port);
    refused.send(post("/v1/embeddings", R"({"input": "refused"})"));
    expect_error(refused.response(), 429, "busy");
    EXPECT_NE(refused.last_head().find("Retry-After: 1"), std::string::npos) << refused.last_head();
    // A connection past the cap (3 here: busy, queued, refused) is answered 503 and closed.
    Conn over(port);
    expect_error(over.response(), 503, "too many open connections");
  }
  EXPECT_EQ(busy.response().first, 200);
  EXPECT_EQ(queued.response().first, 200);
}

TEST(ServeHostile, ARequestPastItsDeadlineIs504) {
  testing::TempDir tmp;
  ServerProcess server(tmp, "--request-timeout 0.3");
  std::string words;
  for (int i = 0; i < 400; ++i) words += "word ";
  json many = json::array();
  for (int i = 0; i < 200; ++i) many.push_back(words + std::to_string(i));  // about a second of work
  expect_error(request(server.port(), post("/v1/embeddings", json{{"input", many}}.dump())), 504, "took longer than 0.3 s");
  // The pass in flight finishes (it is not interrupted); then the server answers in time again. The pass takes about
  // a second on an idle machine and longer on a busy one, where a request behind it is a 504 too: wait for a 200.
  std::pair<int, std::string> r;
  for (int attempt = 0; attempt < 120; ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    r = request(server.port(), post("/v1/embeddings", R"({"input": "still here"})"));
    if (r.first != 504) break;
  }
  ASSERT_EQ(r.first, 200) << r.second;
  EXPECT_EQ(json::parse(r.second)["data"][0]["embedding"].size(), 64u);
}

TEST(ServeSearch, SearchesTheIndexLikeTheSearchVerb) {
  testing::TempDir tmp;
  fs::create_directories(tmp / "docs");
  testing::write_file(tmp / "docs/cats.txt", "Cats sleep most of the day and purr when content.");
  testing::write_file(tmp / "docs/rockets.txt", "Rockets burn fuel to lift satellites into orbit.");
  testing::write_file(tmp / "docs/bread.txt", "Bread rises because yeast makes gas in the dough.");
  const std::string model = testing::test_model("tiny-f32").string(), index = (tmp / "idx").string();
  std::string out;
  ASSERT_EQ(testing::run_command(fmt::format("'{}' index --model '{}' --dtype fp32 --index '{}' '{}'", OE_CLI, model,
                                             index, (tmp / "docs").string()), &out), 0) << out;
  ASSERT_EQ(testing::run_stdout(fmt::format("'{}' search --model '{}' --dtype fp32 --index '{}' --format json -k 3 "
                                            "'sleepy cats' 2>/dev/null", OE_CLI, model, index), &out), 0);
  std::vector<json> want;
  std::istringstream lines(out);
  for (std::string l; std::getline(lines, l);) want.push_back(json::parse(l));
  ASSERT_EQ(want.size(), 3u) << out;
  ServerProcess server(tmp, "--index '" + index + "'");
  const auto r = request(server.port(), post("/v1/search", R"({"query": "sleepy cats", "k": 3})"));
  ASSERT_EQ(r.first, 200) << r.second;
  const auto got = json::parse(r.second)["data"];
  ASSERT_EQ(got.size(), 3u) << r.second;
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(got[i]["path"], want[i]["path"]) << r.second;
    EXPECT_NEAR(got[i]["score"].get<double>(), want[i]["score"].get<double>(), 1e-5);
  }
  const auto filtered = request(server.port(), post("/v1/search", R"({"query": "x", "modality": "image"})"));
  ASSERT_EQ(filtered.first, 200) << filtered.second;
  EXPECT_TRUE(json::parse(filtered.second)["data"].empty());
  expect_error(request(server.port(), post("/v1/search", R"({"query": "x", "k": 0})")), 400, "k:");
}


// A GET with the key as a header, as a cookie, or none.
std::string get(const std::string& target, const std::string& key = KEY, const std::string& cookie = "",
                const std::string& range = "") {
  return fmt::format("GET {} HTTP/1.1\r\nHost: x\r\n{}{}{}\r\n", target,
                     key.empty() ? "" : fmt::format("Authorization: Bearer {}\r\n", key),
                     cookie.empty() ? "" : fmt::format("Cookie: theme=dark; omni_embed_key={}\r\n", cookie),
                     range.empty() ? "" : fmt::format("Range: {}\r\n", range));
}

// The search page's routes: the page, /v1/index, thumbnails and the indexed files, only ever for files the index
// names, with the key as a header or the page's cookie; a file that turned hostile after indexing is a clean 422.
TEST(ServeBrowse, ThumbnailsAndMediaOnlyForFilesTheIndexNames) {
  testing::TempDir tmp;
  fs::create_directories(tmp / "docs");
  testing::write_file(tmp / "docs/cats.txt", "Cats sleep most of the day and purr when content.");
  std::string out;
  ASSERT_EQ(testing::run_command(fmt::format("ffmpeg -nostdin -loglevel error -y -f lavfi -i testsrc2=size=96x64 "
                                             "-frames:v 1 '{}'", (tmp / "docs/pic.png").string()), &out), 0) << out;
  ASSERT_EQ(testing::run_command(fmt::format("ffmpeg -nostdin -loglevel error -y -f lavfi -i "
                                             "sine=frequency=440:sample_rate=16000 -t 2 '{}'",
                                             (tmp / "docs/tone.wav").string()), &out), 0) << out;
  const std::string model = testing::test_model("tiny-f32").string(), index = (tmp / "idx").string();
  ASSERT_EQ(testing::run_command(fmt::format("'{}' index --model '{}' --dtype fp32 --index '{}' '{}'", OE_CLI, model,
                                             index, (tmp / "docs").string()), &out), 0) << out;
  testing::write_file(tmp / "docs/later.png", testing::read_file(tmp / "docs/pic.png"));  // not indexed
  ServerProcess server(tmp, "--index '" + index + "'");
  const int port = server.port();

  const auto page = request(port, get("/", ""));
  ASSERT_EQ(page.first, 200) << page.second;
  EXPECT_NE(page.second.find("<html"), std::string::npos);
  const auto info = request(port, get("/v1/index"));
  ASSERT_EQ(info.first, 200) << info.second;
  const auto j = json::parse(info.second);
  EXPECT_EQ(j["sources"], 3);
  EXPECT_EQ(j["modalities"]["audio"], 1);
  EXPECT_EQ(j["modalities"]["image"], 1);
  EXPECT_EQ(j["modalities"]["text"], 1);
  EXPECT_EQ(j["late_fusion"], false);

  // The image's item id, from a search.
  const auto hits = request(port, post("/v1/search", R"({"query": "x", "modality": "image"})"));
  ASSERT_EQ(hits.first, 200) << hits.second;
  const auto hit = json::parse(hits.second)["data"][0];
  const int64_t item = hit["item"].get<int64_t>();
  const std::string pic = hit["path"].get<std::string>();

  for (const std::string& target : {fmt::format("/v1/thumbnail?item={}", item),
                                    fmt::format("/v1/thumbnail?path={}&size=48", pic)}) {
    Conn c(port);
    c.send(get(target));
    const auto r = c.response();
    ASSERT_EQ(r.first, 200) << target << r.second;
    EXPECT_NE(c.last_head().find("Content-Type: image/jpeg"), std::string::npos) << c.last_head();
    ASSERT_GE(r.second.size(), 4u);
    EXPECT_EQ(r.second.substr(0, 2), "\xff\xd8");  // a JPEG
  }
  EXPECT_EQ(request(port, get(fmt::format("/v1/thumbnail?item={}", item), "", KEY)).first, 200);  // the cookie
  expect_error(request(port, get(fmt::format("/v1/thumbnail?item={}", item), "")), 401, "missing API key");
  expect_error(request(port, get(fmt::format("/v1/thumbnail?item={}", item), "", "wrong")), 401, "not valid");
  expect_error(request(port, get("/v1/index", "", KEY)), 401, "missing API key");  // the cookie is for media only

  // Nothing outside the index: not /etc/passwd, not a file beside the indexed ones, not an unknown item.
  expect_error(request(port, get("/v1/thumbnail?path=/etc/passwd")), 404, "is not a file of the index");
  expect_error(request(port, get("/v1/media?path=%2Fetc%2Fhostname")), 404, "is not a file of the index");
  expect_error(request(port, get("/v1/media?path=" + (tmp / "docs/later.png").string())), 404, "not a file of the index");
  expect_error(request(port, get("/v1/media?path=" + (tmp / "docs/../docs/pic.png").string())), 404, "not a file");
  expect_error(request(port, get("/v1/thumbnail?item=999999")), 404, "no item 999999");
  expect_error(request(port, get("/v1/thumbnail?item=-1")), 400, "item:");
  expect_error(request(port, get("/v1/thumbnail")), 400, "?item=ID");
  expect_error(request(port, get(fmt::format("/v1/thumbnail?item={}&size=99999", item))), 400, "size:");

  // The file in byte ranges, as players read it.
  const std::string bytes = testing::read_file(pic);
  {
    Conn c(port);
    c.send(get(fmt::format("/v1/media?item={}", item), KEY, "", "bytes=2-9"));
    const auto r = c.response();
    ASSERT_EQ(r.first, 206) << r.second;
    EXPECT_EQ(r.second, bytes.substr(2, 8));
    EXPECT_NE(c.last_head().find(fmt::format("Content-Range: bytes 2-9/{}", bytes.size())), std::string::npos);
    EXPECT_NE(c.last_head().find("Content-Type: image/png"), std::string::npos);
  }
  const auto whole = request(port, get(fmt::format("/v1/media?item={}", item), "", KEY));
  ASSERT_EQ(whole.first, 200);
  EXPECT_EQ(whole.second, bytes);
  const auto tail = request(port, get(fmt::format("/v1/media?item={}", item), KEY, "", "bytes=-5"));
  ASSERT_EQ(tail.first, 206);
  EXPECT_EQ(tail.second, bytes.substr(bytes.size() - 5));
  expect_error(request(port, get(fmt::format("/v1/media?item={}", item), KEY, "", fmt::format("bytes={}-", bytes.size()))),
               416, "outside the file");
  expect_error(request(port, get(fmt::format("/v1/media?item={}", item), KEY, "", "bytes=9-2")), 400, "Range:");

  // More like this: the item's own vector ranks it first.
  const auto like = request(port, post("/v1/search", fmt::format(R"({{"like": {}, "k": 2}})", item)));
  ASSERT_EQ(like.first, 200) << like.second;
  EXPECT_EQ(json::parse(like.second)["data"][0]["item"], item);
  EXPECT_NEAR(json::parse(like.second)["data"][0]["score"].get<double>(), 1.0, 1e-5);
  expect_error(request(port, post("/v1/search", R"({"like": 999999})")), 404, "no item 999999");
  expect_error(request(port, post("/v1/search", R"({"like": 1, "query": "x"})")), 400, "not both");

  // A preview of the sound: a WebM (its EBML magic), with ranges; an image has none.
  const auto sound = request(port, post("/v1/search", R"({"query": "x", "modality": "audio"})"));
  const int64_t sound_item = json::parse(sound.second)["data"][0]["item"].get<int64_t>();
  {
    Conn c(port);
    c.send(get(fmt::format("/v1/preview?item={}", sound_item), "", KEY));
    const auto r = c.response();
    ASSERT_EQ(r.first, 200) << r.second;
    EXPECT_NE(c.last_head().find("Content-Type: audio/webm"), std::string::npos) << c.last_head();
    ASSERT_GE(r.second.size(), 4u);
    EXPECT_EQ(r.second.substr(0, 4), "\x1a\x45\xdf\xa3");
    const auto part = request(port, get(fmt::format("/v1/preview?item={}", sound_item), KEY, "", "bytes=0-3"));
    EXPECT_EQ(part.first, 206);
    EXPECT_EQ(part.second, r.second.substr(0, 4));
  }
  expect_error(request(port, get(fmt::format("/v1/preview?item={}", item))), 404, "has no preview");
  expect_error(request(port, get("/v1/preview?path=/etc/passwd")), 404, "is not a file of the index");

  // A text item has no thumbnail; an indexed file that turned into garbage is a 422 naming it, and the server
  // keeps serving.
  const auto text_hits = request(port, post("/v1/search", R"({"query": "x", "modality": "text"})"));
  const int64_t text_item = json::parse(text_hits.second)["data"][0]["item"].get<int64_t>();
  expect_error(request(port, get(fmt::format("/v1/thumbnail?item={}", text_item))), 404, "has no thumbnail");
  testing::write_file(tmp / "docs/pic.png", std::string(5000, 'x'));
  expect_error(request(port, get(fmt::format("/v1/thumbnail?item={}&size=64", item))), 422, "no thumbnail could be made");
  expect_serving(port);
}

}  // namespace
}  // namespace oe
