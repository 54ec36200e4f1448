#include "recorder.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace voice {

std::shared_ptr<Recorder> Recorder::open(const std::string& path, int rate, int inRate, std::string* err) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) {
    if (err) *err = "cannot open " + path + ": " + std::strerror(errno);
    return nullptr;
  }
  std::shared_ptr<Recorder> r(new Recorder(f, path, rate == 16000 ? 16000 : 8000, inRate));
  r->writeHeader(0);
  r->thread_ = std::thread([p = r.get()] { p->run(); });
  return r;
}

Recorder::Recorder(FILE* f, std::string path, int rate, int inRate)
    : f_(f), path_(std::move(path)), rate_(rate), inRate_(inRate) {
  if (inRate_ != rate_) leftRs_ = std::make_unique<Resampler>(inRate_, rate_, 640);
  if (rate_ != 8000) rightRs_ = std::make_unique<Resampler>(8000, rate_, 640);
  cap_ = static_cast<size_t>(rate_) * 2;
  ring_.assign(cap_ * 2, 0);
  out_.reserve(cap_ * 2);
}

Recorder::~Recorder() { stop(); }

void Recorder::push(const int16_t* left, size_t leftN, const int16_t* right8k, size_t rightN) {
  const size_t n = static_cast<size_t>(rate_ / 50);
  // Bring both channels to the file rate (resamplers never allocate).
  size_t ln = 0, rn = 0;
  if (left && leftRs_) ln = leftRs_->process(left, leftN, leftTmp_, 640);
  else if (left) { ln = std::min<size_t>(leftN, 640); std::memcpy(leftTmp_, left, ln * 2); }
  if (right8k && rightRs_) rn = rightRs_->process(right8k, rightN, rightTmp_, 640);
  else if (right8k) { rn = std::min<size_t>(rightN, 640); std::memcpy(rightTmp_, right8k, rn * 2); }
  const size_t tail = tail_.load(std::memory_order_relaxed);
  const size_t head = head_.load(std::memory_order_acquire);
  if (tail - head + n > cap_) {
    dropped_.fetch_add(n, std::memory_order_relaxed);
    return;
  }
  for (size_t i = 0; i < n; ++i) {
    const size_t at = ((tail + i) % cap_) * 2;
    ring_[at] = i < ln ? leftTmp_[i] : 0;
    ring_[at + 1] = i < rn ? rightTmp_[i] : 0;
  }
  tail_.store(tail + n, std::memory_order_release);
}

void Recorder::drain() {
  const size_t head = head_.load(std::memory_order_relaxed);
  const size_t tail = tail_.load(std::memory_order_acquire);
  if (tail == head) return;
  out_.clear();
  for (size_t i = head; i < tail; ++i) {
    const size_t at = (i % cap_) * 2;
    out_.push_back(ring_[at]);
    out_.push_back(ring_[at + 1]);
  }
  head_.store(tail, std::memory_order_release);
  std::fwrite(out_.data(), sizeof(int16_t), out_.size(), f_);  // WAV is little-endian, like this host
  written_.fetch_add(tail - head, std::memory_order_relaxed);
}

void Recorder::run() {
  std::unique_lock<std::mutex> lk(mu_);
  while (!stopping_) {
    cv_.wait_for(lk, std::chrono::milliseconds(100));
    lk.unlock();
    drain();
    lk.lock();
  }
}

void Recorder::writeHeader(uint32_t frames) {
  uint8_t h[44];
  auto w32 = [&](int o, uint32_t v) { h[o] = v & 255; h[o + 1] = (v >> 8) & 255; h[o + 2] = (v >> 16) & 255; h[o + 3] = v >> 24; };
  auto w16 = [&](int o, uint16_t v) { h[o] = v & 255; h[o + 1] = v >> 8; };
  const uint32_t data = frames * 4;
  std::memcpy(h, "RIFF", 4); w32(4, 36 + data); std::memcpy(h + 8, "WAVEfmt ", 8);
  w32(16, 16); w16(20, 1); w16(22, 2); w32(24, static_cast<uint32_t>(rate_)); w32(28, static_cast<uint32_t>(rate_) * 4);
  w16(32, 4); w16(34, 16); std::memcpy(h + 36, "data", 4); w32(40, data);
  std::fseek(f_, 0, SEEK_SET);
  std::fwrite(h, 1, 44, f_);
  std::fseek(f_, 0, SEEK_END);
}

void Recorder::stop() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stopped_) return;
    stopped_ = true;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  drain();
  writeHeader(static_cast<uint32_t>(written_.load()));
  std::fclose(f_);
  f_ = nullptr;
}

}  // namespace voice
