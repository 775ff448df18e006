// BlockPipe: a bounded hand-over of byte blocks from one producer thread
// (reading a source) to one consumer thread (writing a target).
//
// In:     bytes the producer appends (whole rows of a COPY stream).
// Out:    the same bytes, in order, as blocks of about block_bytes each.
// Memory: at most `blocks` blocks exist, allocated on first use and recycled,
//         so memory stays fixed however much data passes through (a single
//         row larger than a block grows that block; it is trimmed back on
//         recycling).
// Errors: the producer ends with Close(status); the consumer gives up with
//         Stop(), after which the producer's Append()/Flush() return false at
//         once, also when it was waiting for a free block.
//
// Thread safety: one producer thread and one consumer thread; the producer
// methods are not safe to call from two threads, nor the consumer ones.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/status.h"

namespace ferry {

class BlockPipe {
 public:
  BlockPipe(size_t blocks, size_t block_bytes);
  BlockPipe(const BlockPipe&) = delete;
  BlockPipe& operator=(const BlockPipe&) = delete;

  // Makes the pipe ready for a new stream: every block is free, no side has
  // closed or stopped. Call only when neither thread is using the pipe.
  void Reset();

  size_t block_bytes() const { return block_bytes_; }

  // ---- producer ----

  // Appends `data`, first sending the current block when `data` would not
  // fit in it. False when the consumer has stopped.
  bool Append(std::string_view data) {
    if (current_ != nullptr && current_->size() + data.size() <= block_bytes_) {
      current_->append(data);
      return true;
    }
    return AppendSlow(data);
  }
  // The block being filled, to append to directly (e.g. encoding a row in
  // place); follow with SendIfFull(). Null when the consumer has stopped.
  std::string* buffer() {
    if (current_ == nullptr) current_ = TakeFree();
    return current_;
  }
  // Sends the current block when it holds block_bytes or more. False when
  // the consumer has stopped.
  bool SendIfFull() {
    if (current_ != nullptr && current_->size() < block_bytes_) return true;
    return Flush();
  }
  // Sends the current block (if not empty). False when the consumer stopped.
  bool Flush();
  // The end of the stream: `status` ok when everything was appended (the
  // current block is sent first), else the producer's error (blocks not yet
  // received are dropped: the consumer's next Receive() returns null).
  void Close(Status status);

  // ---- consumer ----

  // The next block, in order; waits for one. Null at the end of the stream
  // (see producer_status()) or after Stop(). Hand it back with Recycle().
  std::string* Receive();
  void Recycle(std::string* block);
  // The consumer gives up: the producer's next (or waiting) Append, Flush or
  // SendIfFull returns false, and Receive() returns null from now on.
  void Stop();
  // After Receive() returned null: ok at the end of the stream, else the
  // producer's error.
  Status producer_status();

  // Blocks allocated so far (never more than `blocks`), for tests.
  size_t allocated() const { return storage_.size(); }

 private:
  bool AppendSlow(std::string_view data);
  std::string* TakeFree();  // null once stopped

  const size_t max_blocks_;
  const size_t block_bytes_;
  std::mutex mu_;
  std::condition_variable changed_;
  std::vector<std::unique_ptr<std::string>> storage_;
  std::deque<std::string*> free_;  // recycled, empty
  std::deque<std::string*> full_;  // sent, not yet received
  std::string* current_ = nullptr;  // the producer's block being filled
  bool closed_ = false;
  bool stopped_ = false;
  Status producer_status_;
};

}  // namespace ferry
