#include "move/redis/redis_follow.h"

#include <fmt/format.h>

namespace ferry::redis {
namespace {

// notify-keyspace-events with K (keyspace channel) and A (every class).
std::string WithKeyspaceEvents(const std::string& flags) {
  std::string out = flags;
  if (out.find('K') == std::string::npos) out += 'K';
  if (out.find('A') == std::string::npos) out += 'A';
  return out;
}

Status SetEvents(RedisNode& node, const std::string& flags) {
  Status s(node.RunOk({"CONFIG", "SET", "notify-keyspace-events", flags}).status());
  return std::move(s).Prefix(fmt::format("CONFIG SET notify-keyspace-events on {}",
                                         node.address()));
}

}  // namespace

Result<std::unique_ptr<KeyspaceFeed>> KeyspaceFeed::Start(const ClusterNode& master,
                                                          const Credentials& credentials) {
  std::unique_ptr<KeyspaceFeed> feed(new KeyspaceFeed());
  feed->master_ = master;
  feed->credentials_ = credentials;
  feed->prefix_ = fmt::format("__keyspace@{}__:", credentials.database);
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<RedisNode> admin,
                         RedisNode::Connect(master.host, master.port, credentials));
  FERRY_ASSIGN_OR_RETURN(RedisReply got,
                         admin->RunOk({"CONFIG", "GET", "notify-keyspace-events"}));
  feed->previous_ = got.elements.size() == 2 ? got.elements[1].str : "";
  feed->current_ = WithKeyspaceEvents(feed->previous_);
  if (feed->changed_setting()) FERRY_RETURN_IF_ERROR(SetEvents(*admin, feed->current_));
  auto subscriber = RedisNode::Connect(master.host, master.port, credentials);
  Status subscribed = subscriber.status();
  if (subscribed.ok()) {
    feed->subscriber_ = std::move(*subscriber);
    feed->subscriber_->SetReadTimeout(std::chrono::milliseconds(0));  // quiet is no failure
    subscribed = feed->subscriber_->Send({{"PSUBSCRIBE", feed->prefix_ + "*"}});
  }
  if (!subscribed.ok()) {
    if (feed->changed_setting()) (void)SetEvents(*admin, feed->previous_);
    return subscribed;
  }
  feed->reader_ = std::thread([f = feed.get()] { f->Read(); });
  return feed;
}

KeyspaceFeed::~KeyspaceFeed() { (void)Stop(); }

void KeyspaceFeed::Read() {
  while (!stopping_) {
    auto got = subscriber_->Receive(1);
    if (!got.ok()) {
      if (!stopping_) {
        std::lock_guard lock(mu_);
        error_ = std::move(got).TakeStatus().Prefix(
            fmt::format("keyspace notifications from {} stopped", master_.address()));
      }
      return;
    }
    const RedisReply& m = (*got)[0];
    // ["pmessage", pattern, "__keyspace@0__:KEY", event]
    if (m.elements.size() != 4 || m.elements[0].str != "pmessage") continue;
    const std::string& channel = m.elements[2].str;
    if (channel.compare(0, prefix_.size(), prefix_) != 0) continue;
    std::lock_guard lock(mu_);
    dirty_.insert(channel.substr(prefix_.size()));
  }
}

std::vector<std::string> KeyspaceFeed::Drain() {
  std::lock_guard lock(mu_);
  std::vector<std::string> keys(dirty_.begin(), dirty_.end());
  dirty_.clear();
  return keys;
}

size_t KeyspaceFeed::pending() const {
  std::lock_guard lock(mu_);
  return dirty_.size();
}

Status KeyspaceFeed::health() const {
  std::lock_guard lock(mu_);
  return error_;
}

Status KeyspaceFeed::Stop() {
  if (stopped_) return Status::Ok();
  stopped_ = true;
  stopping_ = true;
  if (subscriber_ != nullptr) subscriber_->Interrupt();
  if (reader_.joinable()) reader_.join();
  if (!changed_setting()) return Status::Ok();
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<RedisNode> admin,
                         RedisNode::Connect(master_.host, master_.port, credentials_));
  return SetEvents(*admin, previous_);
}

}  // namespace ferry::redis
