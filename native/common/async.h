// Runs native work off the JS main thread and settles a Promise with its result. Every C++ or
// libtorch exception thrown by the work becomes a rejected Promise with the native message.
#pragma once

#include <napi.h>

#include <exception>
#include <functional>
#include <memory>
#include <string>

namespace dpo {

// The message of an exception, without libtorch's C++ backtrace.
std::string exception_message(const std::exception& e);

// Calls `fn` and turns any C++ exception into a JS Error thrown into `env`. Synchronous
// bindings wrap their bodies in this so that no exception escapes as an abort.
template <typename Fn>
Napi::Value guard(Napi::Env env, Fn&& fn) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, exception_message(e));
  }
}

// `Work` runs on a libuv worker thread and must not touch JS values; `Done` runs on the main
// thread with the result and builds the JS value that resolves the promise.
template <typename Result>
class PromiseWorker : public Napi::AsyncWorker {
 public:
  using Work = std::function<Result()>;
  using Done = std::function<Napi::Value(Napi::Env, Result&)>;

  PromiseWorker(Napi::Env env, Work work, Done done)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)), done_(std::move(done)) {}

  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      result_ = std::make_unique<Result>(work_());
    } catch (const std::exception& e) {
      SetError(exception_message(e));
    } catch (...) {
      SetError("unknown native error");
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    try {
      deferred_.Resolve(done_(env, *result_));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    } catch (const std::exception& e) {
      deferred_.Reject(Napi::Error::New(env, exception_message(e)).Value());
    }
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Work work_;
  Done done_;
  std::unique_ptr<Result> result_;
};

// Queues `work` on the thread pool and returns the promise it settles.
template <typename Result>
Napi::Promise run_async(Napi::Env env, std::function<Result()> work,
                        std::function<Napi::Value(Napi::Env, Result&)> done) {
  auto* worker = new PromiseWorker<Result>(env, std::move(work), std::move(done));
  Napi::Promise promise = worker->promise();
  worker->Queue();  // libuv owns the worker from here and deletes it after OnOK/OnError
  return promise;
}

}  // namespace dpo
