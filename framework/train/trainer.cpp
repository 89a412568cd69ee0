#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/threads.h"
#include "data/cifar.h"
#include "data/idx.h"
#include "ops/ops.h"
#include "train/metrics.h"
#include "train/optim_setup.h"
#include "train/progress.h"

namespace lowbit::train {

namespace fs = std::filesystem;

data::Dataset load_dataset(const io::DataConfig& cfg, bool train) {
  data::Dataset ds = cfg.dataset == io::DatasetKind::fashion_mnist ? data::load_fashion_mnist(cfg.path, train)
                                                                  : data::load_cifar10(cfg.path, train);
  const int64_t limit = train ? cfg.train_limit : cfg.test_limit;
  if (limit > 0 && limit < ds.size()) {
    ds.images = ds.images.slice0(0, limit);
    ds.labels = ds.labels.slice0(0, limit);
  }
  return ds;
}

data::Transforms make_transforms(const io::DataConfig& cfg, bool train) {
  data::Transforms t;
  t.add(data::ToFloat{});
  t.add(data::Normalize{cfg.mean, cfg.std});
  if (train && cfg.random_crop > 0) t.add(data::RandomCrop{cfg.random_crop, cfg.crop_padding});
  if (train && cfg.hflip) t.add(data::RandomHFlip{0.5f});
  return t;
}

EvalResult evaluate(nn::Module& model, data::DataLoader& loader) {
  NoGradGuard no_grad;
  model.eval();
  loader.start_epoch(0);
  data::Batch b;
  double loss_sum = 0;
  int64_t correct = 0, n = 0;
  while (loader.next(b)) {
    Variable logits = model.forward(Variable(b.x));
    const int64_t bs = b.y.size(0), c = logits.size(1);
    loss_sum += ops::cross_entropy(logits, b.y).data().item() * static_cast<double>(bs);
    const float* p = logits.data().f32();
    const int32_t* y = b.y.data<int32_t>();
    for (int64_t i = 0; i < bs; ++i) {
      int64_t best = 0;
      for (int64_t j = 1; j < c; ++j)
        if (p[i * c + j] > p[i * c + best]) best = j;
      correct += best == y[i];
    }
    n += bs;
  }
  LB_CHECK(n > 0, "evaluate: the data set is empty");
  return {loss_sum / static_cast<double>(n), static_cast<double>(correct) / static_cast<double>(n), n};
}

static std::string default_run_dir(const std::string& config_path) {
  return "runs/" + fs::path(config_path).stem().string();
}

static int64_t count_correct(const Tensor& logits, const Tensor& y) {
  const int64_t bs = logits.size(0), c = logits.size(1);
  const float* p = logits.f32();
  const int32_t* lab = y.data<int32_t>();
  int64_t correct = 0;
  for (int64_t i = 0; i < bs; ++i) {
    int64_t best = 0;
    for (int64_t j = 1; j < c; ++j)
      if (p[i * c + j] > p[i * c + best]) best = j;
    correct += best == lab[i];
  }
  return correct;
}

TrainResult run_training(const io::RunConfig& cfg, const TrainOptions& opt) {
  set_num_threads(static_cast<int>(cfg.train.threads));
  const uint64_t seed = cfg.train.seed;
  io::BuiltModel built = io::build_model(cfg.model_path, cfg.model_params, seed);
  nn::Graph& model = *built.graph;

  data::Dataset train_ds = load_dataset(cfg.data, true);
  data::Dataset test_ds = load_dataset(cfg.data, false);
  data::LoaderOptions lo;
  lo.batch_size = cfg.train.batch_size;
  lo.shuffle = true;
  lo.seed = Rng::derive(seed, 2).next_u64();  // the "shuffle + augmentation" stream
  lo.transforms = make_transforms(cfg.data, true);
  data::DataLoader train_loader(train_ds, lo);
  data::LoaderOptions eo;
  eo.batch_size = cfg.train.eval_batch_size;
  eo.shuffle = false;
  eo.transforms = make_transforms(cfg.data, false);
  data::DataLoader test_loader(test_ds, eo);
  const Shape sample = train_loader.sample_shape();
  LB_CHECK(sample == built.input, cfg.file, ": the model ", cfg.model_path, " expects inputs ", built.input.str(),
           " (C, H, W) but the data gives ", sample.str(), ": set model.params (e.g. in_channels, input_size) or data.random_crop");
  const Shape out = model.infer_shape({Shape({1, sample[0], sample[1], sample[2]})});
  LB_CHECK(out.rank() == 2 && out[1] >= train_ds.num_classes, cfg.model_path, ": the model's output ", out.str(),
           " must be (N, classes) with at least ", train_ds.num_classes, " classes");

  auto optimizer = make_optimizer(cfg.optimizer, model);
  optim::LrSchedule schedule(*optimizer, schedule_config(cfg.schedule, cfg.train.epochs, train_loader.batches_per_epoch()));

  const std::string run_dir = opt.out_dir.empty() ? default_run_dir(cfg.file) : opt.out_dir;
  fs::create_directories(run_dir);
  {
    std::ofstream f(run_dir + "/config.yaml");
    LB_CHECK(f.good(), "cannot write ", run_dir, "/config.yaml");
    f << "# resolved config of " << cfg.file << " (defaults + file + overrides)\n" << io::to_yaml(cfg.resolved);
  }
  MetricsLog metrics(run_dir);
  const bool tty = !opt.quiet && stderr_is_tty();
  const auto run_start = std::chrono::steady_clock::now();
  TrainResult result;
  result.run_dir = run_dir;
  int64_t step = 0;
  double ips_sum = 0;
  for (int64_t epoch = 0; epoch < cfg.train.epochs; ++epoch) {
    model.train();
    train_loader.start_epoch(epoch);
    const int64_t nb = train_loader.batches_per_epoch();
    ProgressBar bar("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(cfg.train.epochs), nb, tty);
    data::Batch b;
    double loss_sum = 0;
    int64_t seen = 0, correct = 0, it = 0;
    char post[64] = "";
    while (train_loader.next(b)) {
      schedule.set_epoch(epoch, it, nb);
      Variable logits = model.forward(Variable(b.x));
      Variable loss = ops::cross_entropy(logits, b.y);
      const float lv = loss.data().item();
      LB_CHECK(std::isfinite(lv), "training diverged: loss is ", lv, " at epoch ", epoch + 1, ", step ", step + 1,
               " (lower optimizer.lr or check the data normalization)");
      optimizer->zero_grad();
      loss.backward();
      optimizer->step();
      ++step;
      ++it;
      const int64_t bs = b.y.size(0);
      loss_sum += lv * static_cast<double>(bs);
      correct += count_correct(logits.data(), b.y);
      seen += bs;
      std::snprintf(post, sizeof post, "loss=%.4f", loss_sum / static_cast<double>(seen));
      if (!opt.quiet) bar.update(it, seen, post);
    }
    const double train_time = bar.elapsed();
    EvalResult ev = evaluate(model, test_loader);
    EpochMetrics m;
    m.epoch = epoch + 1;
    m.step = step;
    m.lr = optimizer->lr(0);
    m.train_loss = loss_sum / static_cast<double>(seen);
    m.train_acc = static_cast<double>(correct) / static_cast<double>(seen);
    m.test_loss = ev.loss;
    m.test_acc = ev.acc;
    m.img_per_s = static_cast<double>(seen) / train_time;
    m.epoch_time = train_time;
    m.wall_time = std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();
    metrics.append(m);
    ips_sum += m.img_per_s;
    if (!opt.quiet) {
      char fin[128];
      std::snprintf(fin, sizeof fin, "loss=%.4f, test_loss=%.4f, test_acc=%.4f", m.train_loss, m.test_loss, m.test_acc);
      bar.finish(seen, fin);
    }
    result.test_acc = ev.acc;
    result.test_loss = ev.loss;
  }
  result.train_img_per_s = ips_sum / static_cast<double>(cfg.train.epochs);
  return result;
}

}  // namespace lowbit::train
