// DataLoader: shuffled, augmented mini-batches from an in-memory Dataset, prepared by a
// background thread.
//
// Determinism: the sample order of an epoch is a Fisher-Yates shuffle driven by an Rng
// derived from (seed, epoch) only, and the sample at position i of the epoch is augmented
// with its own Rng derived from (seed, epoch, i). So a batch's contents depend only on
// (seed, epoch, batch index): identical with or without prefetch, and after skip_batches.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "data/dataset.h"
#include "data/transforms.h"

namespace lowbit::data {

struct LoaderOptions {
  int64_t batch_size = 64;
  bool shuffle = true;
  bool drop_last = false;  // drop a final batch smaller than batch_size
  uint64_t seed = 0;
  Transforms transforms;   // empty: raw byte values as floats
  bool prefetch = true;    // prepare up to 2 batches ahead on a background thread
};

struct Batch {
  Tensor x;           // f32 (B, C, OH, OW)
  Tensor y;           // s32 (B)
  int64_t index = 0;  // batch number within the epoch
};

class DataLoader {
 public:
  // Keeps a (storage-sharing) copy of ds. Throws on batch_size <= 0, a malformed data set or
  // transforms that do not fit its images.
  DataLoader(const Dataset& ds, LoaderOptions opt);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  // Fixes the order of `epoch` (>= 0) and restarts at its first batch. Call before next().
  void start_epoch(int64_t epoch);
  // The next batch of the epoch into out; false when the epoch is exhausted.
  bool next(Batch& out);
  // Moves past the next k batches of this epoch (as if next() had returned them), e.g. to
  // resume mid-epoch: start_epoch(e); skip_batches(k).
  void skip_batches(int64_t k);

  int64_t batches_per_epoch() const;
  int64_t num_samples() const { return n_; }
  int64_t epoch() const { return epoch_; }
  int64_t batches_done() const { return consumed_; }  // returned or skipped in this epoch
  Shape sample_shape() const { return tf_.out_shape(); }  // (C, OH, OW)
  const std::vector<int64_t>& order() const { return order_; }  // (N) sample index per position
  const LoaderOptions& options() const { return opt_; }
  const Dataset& dataset() const { return ds_; }

 private:
  struct Slot {
    Batch batch;
    std::exception_ptr error;
  };
  Batch make_batch(int64_t b) const;
  void start_worker();
  void stop_worker();
  void worker_loop();

  Dataset ds_;
  LoaderOptions opt_;
  CompiledTransforms tf_;
  int64_t n_ = 0;
  int64_t epoch_ = -1;
  uint64_t aug_key_ = 0;
  std::vector<int64_t> order_;  // (N)
  int64_t consumed_ = 0;

  static constexpr size_t kQueueDepth = 2;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Slot> queue_;
  int64_t produce_next_ = 0;  // guarded by mu_
  bool stop_ = false;         // guarded by mu_
  std::thread worker_;
};

}  // namespace lowbit::data
