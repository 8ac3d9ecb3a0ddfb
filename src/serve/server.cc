#include "serve/server.h"

#include <sys/socket.h>

#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <optional>
#include <thread>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/log.h"
#include "serve/routes.h"

namespace oe::serve {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

std::chrono::milliseconds millis(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
}

// The request's log line: one JSON object per request on stderr, whole lines only.
void log_request(const Call& c, int status, const std::string& remote) {
  static std::mutex mutex;
  nlohmann::ordered_json j;
  j["event"] = "request";
  j["id"] = c.id;
  j["method"] = c.method;
  j["route"] = c.route.empty() ? "-" : c.route;
  j["status"] = status;
  j["items"] = c.items;
  j["tokens"] = c.tokens;
  if (!c.modality.empty()) j["modality"] = c.modality;
  j["latency_ms"] = std::round(std::chrono::duration<double, std::milli>(Clock::now() - c.start).count() * 1000) / 1000;
  j["queue_ms"] = std::round(c.queue_seconds * 1e6) / 1000;
  j["remote"] = remote;
  if (!c.error.empty()) j["error"] = c.error;
  const std::string line = j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
  std::lock_guard lock(mutex);
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
}

}  // namespace

struct Server::Impl {
  // Declared in the order they must outlive each other: the io_context's pending handlers hold sessions, which
  // count themselves in `connections` when they go away.
  ServerOptions options;
  Metrics metrics;
  std::atomic<int64_t> connections{0}, in_flight{0};
  std::atomic<uint64_t> next_id{1};
  std::atomic<bool> draining{false};
  Clock::time_point drain_deadline;
  std::mutex done_mutex;
  std::condition_variable done_cv;
  bool done = false;
  Worker worker;
  Routes routes;
  net::io_context ioc;
  tcp::acceptor acceptor{ioc};
  net::signal_set signals{ioc, SIGINT, SIGTERM};
  net::steady_timer drain_timer{ioc};
  std::vector<std::thread> threads;

  explicit Impl(ServerOptions o)
      : options(std::move(o)),
        worker(options.worker, [this](const RoundStats& s) { metrics.round(s); }),
        routes(options, metrics, worker) {}

  void accept();
  void begin_drain();
  void check_drained();
  std::string metrics_text() {
    Gauges g;
    g.queue_depth = worker.queued();
    g.running_jobs = worker.running();
    g.connections = connections.load();
    g.ready = routes.ready();
    return metrics.text(g);
  }
};

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, Server::Impl& server) : stream_(std::move(socket)), server_(server), timer_(stream_.get_executor()) {
    beast::error_code ec;
    const auto ep = stream_.socket().remote_endpoint(ec);
    remote_ = ec ? "?" : fmt::format("{}:{}", ep.address().to_string(), ep.port());
    ++server_.connections;
  }
  ~Session() { --server_.connections; }

  void start() { read(); }
  // Answers 503 and closes: the connection cap is reached.
  void refuse() {
    call_ = std::make_shared<Call>();
    call_->id = server_.next_id++;
    call_->method = "-";
    call_->route = "-";
    ApiError e;
    e.status = 503;
    e.type = "service_unavailable_error";
    e.code = "too_many_connections";
    e.message = fmt::format("too many open connections (at most {}); retry later", server_.options.max_connections);
    call_->error = e.message;
    keep_alive_ = false;
    ++server_.in_flight;
    reply(Answer::error(e));
  }

 private:
  void read() {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(server_.options.max_header_bytes));
    parser_->body_limit(static_cast<uint64_t>(server_.options.max_body_bytes));
    stream_.expires_after(millis(server_.options.read_timeout_seconds));
    http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&Session::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, size_t) {
    if (ec == http::error::end_of_stream || ec == http::error::partial_message || ec == net::error::eof ||
        ec == beast::error::timeout || ec == net::error::connection_reset || ec == net::error::operation_aborted) {
      return close();  // the client left (mid-request too), or sent too slowly (slow-loris): nothing to answer
    }
    call_ = std::make_shared<Call>();
    call_->id = server_.next_id++;
    ++server_.in_flight;
    if (ec) return answer_read_error(ec);
    auto req = parser_->release();
    keep_alive_ = req.keep_alive() && !server_.draining.load();
    head_ = req.method() == http::verb::head;
    call_->method = std::string(req.method_string());
    call_->target = std::string(req.target());
    call_->authorization = std::string(req[http::field::authorization]);
    call_->cookie = std::string(req[http::field::cookie]);
    call_->range = std::string(req[http::field::range]);
    call_->body = std::move(req.body());
    dispatch();
  }

  // A request that cannot be read whole is answered and the connection closed (its framing is lost).
  void answer_read_error(beast::error_code ec) {
    keep_alive_ = false;
    call_->method = "-";
    ApiError e;
    if (ec == http::error::body_limit) {
      e.status = 413;
      e.code = "body_too_large";
      e.message = fmt::format("the request body is larger than {} bytes (--max-body-mb)", server_.options.max_body_bytes);
    } else if (ec == http::error::header_limit) {
      e.status = 431;
      e.code = "header_too_large";
      e.message = fmt::format("the request headers are larger than {} bytes", server_.options.max_header_bytes);
    } else {
      e.status = 400;
      e.code = "bad_http";
      e.message = fmt::format("the request is not valid HTTP/1.1 ({})", ec.message());
    }
    e.type = "invalid_request_error";
    call_->error = e.message;
    reply(Answer::error(e));
  }

  // Answers the request now, or waits for the worker's answer.
  void dispatch() {
    if (server_.draining.load()) {
      keep_alive_ = false;
      ApiError e{503, "the server is shutting down", "service_unavailable_error", "", "shutting_down"};
      call_->error = e.message;
      return reply(Answer::error(e));
    }
    std::optional<Answer> now;
    auto self = shared_from_this();
    // The worker may answer after the deadline did, when this connection is already on its next request: an answer
    // is only taken by the call it belongs to.
    auto later = [self, call = call_](Answer a) {
      net::post(self->stream_.get_executor(), [self, call, a = std::move(a)]() mutable {
        if (self->call_ == call) self->finish(std::move(a));
      });
    };
    try {
      now = server_.routes.handle(call_, later);
    } catch (const std::exception& e) {
      ApiError err{500, fmt::format("internal error: {}", e.what()), "server_error", "", "internal_error"};
      call_->error = err.message;
      now = Answer::error(err);
    }
    if (!now) return wait_for_worker();
    if (call_->route == "/metrics" && now->status == 200) now->body = server_.metrics_text();
    reply(std::move(*now));
  }

  // Waiting on the worker: a deadline of its own, and a watch for the client going away.
  void wait_for_worker() {
    auto self = shared_from_this();
    stream_.expires_never();
    timer_.expires_after(millis(server_.options.request_timeout_seconds));
    timer_.async_wait([self, call = call_](beast::error_code ec) {
      if (ec || self->call_ != call) return;
      ApiError e{504, fmt::format("the request took longer than {} s (--request-timeout)",
                                  self->server_.options.request_timeout_seconds),
                 "timeout_error", "", "timeout"};
      self->call_->error = e.message;
      self->finish(Answer::error(e));
    });
    watch_disconnect(call_);
  }

  // Waits until the socket is readable: end of stream means the client left and its job is cancelled; bytes are a
  // pipelined request, read after this answer.
  void watch_disconnect(const std::shared_ptr<Call>& call) {
    auto self = shared_from_this();
    stream_.socket().async_wait(tcp::socket::wait_read, [self, call](beast::error_code ec) {
      if (ec || self->answered_ || self->call_ != call) return;
      char c;
      const ssize_t n = ::recv(self->stream_.socket().native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
        if (self->call_->job) self->call_->job->cancelled = true;
        self->call_->error = "the client disconnected before the answer";
        self->answered_ = true;
        self->timer_.cancel();
        self->log_and_count(499);
        self->done_in_flight();
        self->close();
      } else if (n < 0) {
        self->watch_disconnect(call);
      }
    });
  }

  // The worker's answer, or the deadline's: whichever comes first is written.
  void finish(Answer a) {
    if (answered_) return;
    if (call_->job && a.status == 504) call_->job->cancelled = true;
    timer_.cancel();
    beast::error_code ignored;
    stream_.socket().cancel(ignored);  // the disconnect watch
    reply(std::move(a));
  }

  // Logs and counts the answer (before it is written: a client that has it sees it in the metrics), then writes it.
  void reply(Answer a) {
    answered_ = true;
    log_and_count(a.status);
    response_.emplace(static_cast<http::status>(a.status), 11);
    response_->set(http::field::server, "omni-embed");
    response_->set(http::field::content_type, a.content_type);
    if (a.retry_after > 0) response_->set(http::field::retry_after, std::to_string(a.retry_after));
    response_->set("X-Request-Id", std::to_string(call_->id));
    for (const auto& [name, value] : a.headers) response_->set(name, value);
    response_->keep_alive(keep_alive_);
    response_->body() = std::move(a.body);
    response_->prepare_payload();
    if (head_) response_->body().clear();
    stream_.expires_after(millis(server_.options.read_timeout_seconds));
    http::async_write(stream_, *response_, beast::bind_front_handler(&Session::on_write, shared_from_this()));
  }

  void on_write(beast::error_code ec, size_t) {
    done_in_flight();
    if (ec || !keep_alive_) return close();
    answered_ = false;
    call_.reset();
    read();
  }

  void log_and_count(int status) {
    log_request(*call_, status, remote_);
    const double seconds = std::chrono::duration<double>(Clock::now() - call_->start).count();
    server_.metrics.request(call_->route.empty() ? "-" : call_->route, status, call_->modality, seconds);
  }

  void done_in_flight() {
    call_->job.reset();
    --server_.in_flight;
    server_.check_drained();
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  Server::Impl& server_;
  net::steady_timer timer_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::string_body>> response_;
  std::shared_ptr<Call> call_;
  std::string remote_;
  bool keep_alive_ = true, head_ = false, answered_ = false;
};

}  // namespace

void Server::Impl::accept() {
  acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == net::error::operation_aborted || !acceptor.is_open()) return;  // closed by the drain
      log_warn("serve: accept failed: {}", ec.message());
    } else {
      auto session = std::make_shared<Session>(std::move(socket), *this);
      if (connections.load() > options.max_connections)
        session->refuse();
      else
        session->start();
    }
    accept();
  });
}

void Server::Impl::begin_drain() {
  if (draining.exchange(true)) return;
  log_info("serve: shutting down: no new connections, {} requests in flight", in_flight.load());
  drain_deadline = Clock::now() + millis(options.drain_timeout_seconds);
  beast::error_code ignored;
  acceptor.close(ignored);
  check_drained();
}

void Server::Impl::check_drained() {
  if (!draining.load()) return;
  if (in_flight.load() > 0 && Clock::now() < drain_deadline) {
    // Poll again in a while (requests in flight call this when they finish, too).
    drain_timer.expires_after(std::chrono::milliseconds(100));
    drain_timer.async_wait([this](beast::error_code ec) {
      if (!ec) check_drained();
    });
    return;
  }
  std::lock_guard lock(done_mutex);
  done = true;
  done_cv.notify_all();
}

Server::Server(ServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {
  Impl& s = *impl_;
  beast::error_code ec;
  const auto address = net::ip::make_address(s.options.host, ec);
  if (ec) throw InvalidInput(fmt::format("--host {}: not an IP address ({})", s.options.host, ec.message()));
  const tcp::endpoint ep(address, static_cast<unsigned short>(s.options.port));
  s.acceptor.open(ep.protocol(), ec);
  if (!ec) s.acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) s.acceptor.bind(ep, ec);
  if (!ec) s.acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) throw IoError(fmt::format("cannot listen on {}:{}: {}", s.options.host, s.options.port, ec.message()));
  s.signals.async_wait([&s](beast::error_code ec, int) {
    if (!ec) s.begin_drain();
  });
  s.accept();
  for (int i = 0; i < std::max(1, s.options.io_threads); ++i) s.threads.emplace_back([&s] { s.ioc.run(); });
}

Server::~Server() {
  impl_->ioc.stop();
  for (auto& t : impl_->threads) t.join();
  // Nothing is left to answer: what is still queued (past the drain's time limit) is dropped unrun.
  impl_->worker.cancel_queued();
  impl_->worker.stop();
}

int Server::port() const { return impl_->acceptor.local_endpoint().port(); }

void Server::set_backend(std::shared_ptr<const Backend> backend, double load_seconds) {
  impl_->metrics.model_loaded(load_seconds);
  impl_->routes.set_backend(std::move(backend));
}

void Server::wait() {
  std::unique_lock lock(impl_->done_mutex);
  impl_->done_cv.wait(lock, [&] { return impl_->done; });
}

void Server::shutdown() {
  net::post(impl_->ioc, [this] { impl_->begin_drain(); });
}

}  // namespace oe::serve
