#include "data/loader.h"

#include <algorithm>
#include <numeric>

#include "core/error.h"
#include "core/rng.h"

namespace lowbit::data {
namespace {

constexpr uint64_t kShuffleStream = 1;
constexpr uint64_t kAugmentStream = 2;

// One well-mixed key per (seed, epoch).
uint64_t epoch_key(uint64_t seed, int64_t epoch) {
  return Rng::derive(seed, static_cast<uint64_t>(epoch)).next_u64();
}

}  // namespace

DataLoader::DataLoader(const Dataset& ds, LoaderOptions opt) : ds_(ds), opt_(std::move(opt)) {
  LB_CHECK(opt_.batch_size > 0, "data loader: batch_size must be positive, got ", opt_.batch_size);
  check_dataset(ds_);
  tf_ = CompiledTransforms(opt_.transforms, ds_.channels(), ds_.height(), ds_.width());
  n_ = ds_.size();
}

DataLoader::~DataLoader() { stop_worker(); }

int64_t DataLoader::batches_per_epoch() const {
  return opt_.drop_last ? n_ / opt_.batch_size : (n_ + opt_.batch_size - 1) / opt_.batch_size;
}

void DataLoader::start_epoch(int64_t epoch) {
  LB_CHECK(epoch >= 0, "data loader: epoch must be >= 0, got ", epoch);
  stop_worker();
  epoch_ = epoch;
  const uint64_t key = epoch_key(opt_.seed, epoch);
  aug_key_ = Rng::derive(key, kAugmentStream).next_u64();
  order_.resize(static_cast<size_t>(n_));
  std::iota(order_.begin(), order_.end(), int64_t{0});
  if (opt_.shuffle) {
    Rng rng = Rng::derive(key, kShuffleStream);
    for (int64_t i = n_ - 1; i > 0; --i) {
      const auto j = static_cast<int64_t>(rng.below(static_cast<uint64_t>(i + 1)));
      std::swap(order_[static_cast<size_t>(i)], order_[static_cast<size_t>(j)]);
    }
  }
  consumed_ = 0;
  start_worker();
}

void DataLoader::skip_batches(int64_t k) {
  LB_CHECK(epoch_ >= 0, "data loader: call start_epoch(epoch) before skip_batches()");
  LB_CHECK(k >= 0, "data loader: skip_batches needs k >= 0, got ", k);
  stop_worker();
  consumed_ = std::min(batches_per_epoch(), consumed_ + k);
  start_worker();
}

bool DataLoader::next(Batch& out) {
  LB_CHECK(epoch_ >= 0, "data loader: call start_epoch(epoch) before next()");
  if (consumed_ >= batches_per_epoch()) return false;
  if (!opt_.prefetch) {
    out = make_batch(consumed_++);
    return true;
  }
  Slot slot;
  {
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [&] { return !queue_.empty(); });
    slot = std::move(queue_.front());
    queue_.pop_front();
  }
  cv_.notify_all();
  ++consumed_;
  if (slot.error) std::rethrow_exception(slot.error);
  out = std::move(slot.batch);
  return true;
}

Batch DataLoader::make_batch(int64_t b) const {
  const int64_t begin = b * opt_.batch_size;
  const int64_t end = std::min(n_, begin + opt_.batch_size);
  const int64_t bs = end - begin;
  const Shape out = tf_.out_shape();
  Batch batch;
  batch.x = Tensor::empty({bs, out[0], out[1], out[2]});  // (B, C, OH, OW)
  batch.y = Tensor::empty({bs}, DType::s32);              // (B)
  batch.index = b;
  const int64_t in_numel = ds_.channels() * ds_.height() * ds_.width();
  const int64_t out_numel = tf_.out_numel();
  const uint8_t* images = ds_.images.data<uint8_t>();
  const int32_t* labels = ds_.labels.data<int32_t>();
  float* x = batch.x.f32();
  int32_t* y = batch.y.data<int32_t>();
  for (int64_t i = 0; i < bs; ++i) {
    const int64_t pos = begin + i;
    const int64_t s = order_[static_cast<size_t>(pos)];
    Rng rng = Rng::derive(aug_key_, static_cast<uint64_t>(pos));
    tf_.apply(images + s * in_numel, rng, x + i * out_numel);
    y[i] = labels[s];
  }
  return batch;
}

void DataLoader::start_worker() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    queue_.clear();
    produce_next_ = consumed_;
    stop_ = false;
  }
  if (opt_.prefetch && consumed_ < batches_per_epoch()) worker_ = std::thread([this] { worker_loop(); });
}

void DataLoader::stop_worker() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
  std::lock_guard<std::mutex> lk(mu_);
  queue_.clear();
}

void DataLoader::worker_loop() {
  const int64_t total = batches_per_epoch();
  for (;;) {
    int64_t b;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return stop_ || queue_.size() < kQueueDepth; });
      if (stop_ || produce_next_ >= total) return;
      b = produce_next_++;
    }
    Slot slot;
    try {
      slot.batch = make_batch(b);
    } catch (...) {
      slot.error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (stop_) return;
      queue_.push_back(std::move(slot));
    }
    cv_.notify_all();
  }
}

}  // namespace lowbit::data
