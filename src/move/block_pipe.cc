// BlockPipe: see block_pipe.h. One mutex and one condition variable; the
// threads meet once per block, never per row.
#include "move/block_pipe.h"

#include <algorithm>

namespace ferry {
namespace {

// A block that grew for one large row goes back to its normal size.
void Trim(std::string* block, size_t block_bytes) {
  block->clear();
  if (block->capacity() > 2 * block_bytes) {
    std::string().swap(*block);
    block->reserve(block_bytes);
  }
}

}  // namespace

BlockPipe::BlockPipe(size_t blocks, size_t block_bytes)
    : max_blocks_(std::max<size_t>(blocks, 2)), block_bytes_(std::max<size_t>(block_bytes, 1)) {}

void BlockPipe::Reset() {
  std::lock_guard lock(mu_);
  free_.clear();
  full_.clear();
  for (auto& block : storage_) {
    Trim(block.get(), block_bytes_);
    free_.push_back(block.get());
  }
  current_ = nullptr;
  closed_ = false;
  stopped_ = false;
  producer_status_ = Status();
}

std::string* BlockPipe::TakeFree() {
  std::unique_lock lock(mu_);
  changed_.wait(lock, [&] { return stopped_ || !free_.empty() || storage_.size() < max_blocks_; });
  if (stopped_) return nullptr;
  if (!free_.empty()) {
    std::string* block = free_.front();
    free_.pop_front();
    return block;
  }
  storage_.push_back(std::make_unique<std::string>());
  storage_.back()->reserve(block_bytes_);
  return storage_.back().get();
}

bool BlockPipe::Flush() {
  std::lock_guard lock(mu_);
  if (stopped_) return false;
  if (current_ == nullptr || current_->empty()) return true;
  full_.push_back(current_);
  current_ = nullptr;
  changed_.notify_all();
  return true;
}

bool BlockPipe::AppendSlow(std::string_view data) {
  if (current_ != nullptr && !current_->empty() && !Flush()) return false;
  if (current_ == nullptr) current_ = TakeFree();
  if (current_ == nullptr) return false;
  current_->append(data);  // may exceed block_bytes for one large row
  return true;
}

void BlockPipe::Close(Status status) {
  if (status.ok()) (void)Flush();
  std::lock_guard lock(mu_);
  if (!status.ok()) {
    // The stream is broken: blocks not yet received would only be discarded.
    for (std::string* block : full_) {
      Trim(block, block_bytes_);
      free_.push_back(block);
    }
    full_.clear();
  }
  closed_ = true;
  producer_status_ = std::move(status);
  changed_.notify_all();
}

std::string* BlockPipe::Receive() {
  std::unique_lock lock(mu_);
  changed_.wait(lock, [&] { return stopped_ || closed_ || !full_.empty(); });
  if (stopped_ || full_.empty()) return nullptr;
  std::string* block = full_.front();
  full_.pop_front();
  return block;
}

void BlockPipe::Recycle(std::string* block) {
  Trim(block, block_bytes_);
  std::lock_guard lock(mu_);
  free_.push_back(block);
  changed_.notify_all();
}

void BlockPipe::Stop() {
  std::lock_guard lock(mu_);
  stopped_ = true;
  changed_.notify_all();
}

Status BlockPipe::producer_status() {
  std::lock_guard lock(mu_);
  return producer_status_;
}

}  // namespace ferry
