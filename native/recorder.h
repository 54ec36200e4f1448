// Recording tap: a stereo 16-bit WAV (left = caller / inbound, right = agent /
// outbound). The media thread only copies samples into a lock-free
// single-producer/single-consumer ring; a writer thread owned by the
// recorder drains it to disk every 100 ms. Off unless a session asks.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "resampler.h"

namespace voice {

class Recorder {
 public:
  /** JS thread: create the file and start the writer. rate: 8000 or 16000; inRate: the session's inbound rate. */
  static std::shared_ptr<Recorder> open(const std::string& path, int rate, int inRate, std::string* err);
  ~Recorder();
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  /** Media thread: one tick of audio, `left` at inRate (or null = silence), `right` 160 samples at 8 kHz. Never blocks. */
  void push(const int16_t* left, size_t leftN, const int16_t* right8k, size_t rightN);
  /** Any thread except the media thread: drain, finish the WAV header, close. Idempotent. */
  void stop();
  uint64_t framesWritten() const { return written_.load(std::memory_order_relaxed); }
  uint64_t framesDropped() const { return dropped_.load(std::memory_order_relaxed); }
  int rate() const { return rate_; }
  const std::string& path() const { return path_; }

 private:
  Recorder(FILE* f, std::string path, int rate, int inRate);
  void run();
  void drain();
  void writeHeader(uint32_t frames);

  FILE* f_;
  std::string path_;
  int rate_, inRate_;
  std::unique_ptr<Resampler> leftRs_, rightRs_;
  int16_t leftTmp_[640], rightTmp_[640];
  std::vector<int16_t> ring_;  // interleaved L/R; capacity 2 s
  size_t cap_;                 // in stereo frames
  std::atomic<size_t> head_{0}, tail_{0};  // frames; producer moves tail, consumer moves head
  std::atomic<uint64_t> written_{0}, dropped_{0};
  std::vector<int16_t> out_;   // writer's scratch
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool stopped_ = false;
  std::thread thread_;
};

}  // namespace voice
