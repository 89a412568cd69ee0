#include "train/trainer.h"

#include "train/interrupt.h"
#include "train/run_folder.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/threads.h"
#include "persist/checkpoint.h"
#include "data/cifar.h"
#include "data/idx.h"
#include "ops/ops.h"
#include "quant/guard.h"
#include "quant/qat.h"
#include "quant/recipe.h"
#include "train/plan_recipe.h"
#include "deploy/lower.h"
#include "train/metrics.h"
#include "train/optim_setup.h"
#include "train/progress.h"

namespace lowbit::train {

namespace fs = std::filesystem;

data::Dataset load_dataset(const config::DataConfig& cfg, bool train) {
  data::Dataset ds = cfg.dataset == config::DatasetKind::fashion_mnist ? data::load_fashion_mnist(cfg.path, train)
                                                                  : data::load_cifar10(cfg.path, train);
  const int64_t limit = train ? cfg.train_limit : cfg.test_limit;
  if (limit > 0 && limit < ds.size()) {
    ds.images = ds.images.slice0(0, limit);
    ds.labels = ds.labels.slice0(0, limit);
  }
  return ds;
}

data::Transforms make_transforms(const config::DataConfig& cfg, bool train) {
  data::Transforms t;
  t.add(data::ToFloat{});
  t.add(data::Normalize{cfg.mean, cfg.std});
  if (train && cfg.random_crop > 0) t.add(data::RandomCrop{cfg.random_crop, cfg.crop_padding});
  if (train && cfg.hflip) t.add(data::RandomHFlip{0.5f});
  return t;
}

data::LoaderOptions eval_loader_options(const config::RunConfig& cfg) {
  data::LoaderOptions o;
  o.batch_size = cfg.train.eval_batch_size;
  o.shuffle = false;
  o.transforms = make_transforms(cfg.data, false);
  return o;
}

EvalResult evaluate(nn::Module& model, data::DataLoader& loader, Tensor* logits_out) {
  NoGradGuard no_grad;
  model.eval();
  loader.start_epoch(0);
  data::Batch b;
  double loss_sum = 0;
  int64_t correct = 0, n = 0;
  std::vector<float> all_logits;
  while (loader.next(b)) {
    Variable logits = model.forward(Variable(b.x));
    const int64_t bs = b.y.size(0), c = logits.size(1);
    if (logits_out) {
      const Tensor l = logits.data().contiguous();
      all_logits.insert(all_logits.end(), l.f32(), l.f32() + bs * c);
    }
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
  if (logits_out)
    *logits_out = Tensor::from_vector(Shape({n, static_cast<int64_t>(all_logits.size()) / n}), all_logits);
  return {loss_sum / static_cast<double>(n), static_cast<double>(correct) / static_cast<double>(n), n};
}

static std::string default_run_dir(const std::string& config_path) {
  return "runs/" + fs::path(config_path).stem().string();
}

std::string resolve_checkpoint(const std::string& p) {
  std::error_code ec;
  if (fs::is_directory(p, ec)) {
    const std::string last = (fs::path(p) / "last.h5").string();
    LB_CHECK(fs::exists(last), "resume: ", p, " is a folder without last.h5 (no epoch finished there yet?)");
    return last;
  }
  LB_CHECK(fs::exists(p), "resume: no checkpoint at ", p);
  return p;
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

void check_deploy_target(const config::RunConfig& cfg) {
  if (cfg.deploy_target == config::DeployTarget::none) return;
  LB_CHECK(quant::parse_recipe(cfg.quant, cfg.source).enabled, cfg.file,
           ": deploy.target integer needs a quant: recipe (a float model has no integer form)");
  config::BuiltModel probe = build_model(cfg);  // a model of its own: the check moves quantizer statistics
  const std::string refusal = deploy::lowering_refusal(*probe.graph, probe.input, probe.name);
  LB_CHECK(refusal.empty(), cfg.file, ": deploy.target is integer, but the recipe does not lower: ", refusal);
}

config::BuiltModel build_model(const config::RunConfig& cfg) {
  config::BuiltModel m = config::build_model(cfg.model_path, cfg.model_params, cfg.train.seed);
  quant::QuantRecipe recipe = quant::parse_recipe(cfg.quant, cfg.source);
  apply_plan_to_recipe(recipe, *m.graph, m.input, m.name, cfg.file);
  quant::apply_recipe(*m.graph, recipe, m.input);
  return m;
}

namespace {

// Everything one run needs, built from the config.
struct Run {
  config::BuiltModel built;
  data::Dataset train_ds, test_ds;
  std::unique_ptr<data::DataLoader> train_loader, test_loader;
  std::unique_ptr<optim::Optimizer> optimizer;
  std::unique_ptr<optim::LrSchedule> schedule;
};

Run build_run(const config::RunConfig& cfg) {
  Run r;
  const uint64_t seed = cfg.train.seed;
  r.built = train::build_model(cfg);
  r.train_ds = load_dataset(cfg.data, true);
  r.test_ds = load_dataset(cfg.data, false);
  data::LoaderOptions lo;
  lo.batch_size = cfg.train.batch_size;
  lo.shuffle = true;
  lo.seed = Rng::derive(seed, 2).next_u64();  // the "shuffle + augmentation" stream
  lo.transforms = make_transforms(cfg.data, true);
  r.train_loader = std::make_unique<data::DataLoader>(r.train_ds, lo);
  r.test_loader = std::make_unique<data::DataLoader>(r.test_ds, eval_loader_options(cfg));
  const Shape sample = r.train_loader->sample_shape();
  LB_CHECK(sample == r.built.input, cfg.file, ": the model ", cfg.model_path, " expects inputs ", r.built.input.str(),
           " (C, H, W) but the data gives ", sample.str(), ": set model.params (e.g. in_channels, input_size) or data.random_crop");
  const Shape out = r.built.graph->infer_shape({Shape({1, sample[0], sample[1], sample[2]})});
  LB_CHECK(out.rank() == 2 && out[1] >= r.train_ds.num_classes, cfg.model_path, ": the model's output ", out.str(),
           " must be (N, classes) with at least ", r.train_ds.num_classes, " classes");
  r.optimizer = make_optimizer(cfg.optimizer, *r.built.graph);
  r.schedule = std::make_unique<optim::LrSchedule>(
      *r.optimizer, schedule_config(cfg.schedule, cfg.train.epochs, r.train_loader->batches_per_epoch()));
  return r;
}

std::string history_jsonl(const std::vector<EpochMetrics>& h) {
  std::string s;
  for (const auto& m : h) s += to_json(m) + "\n";
  return s;
}

}  // namespace

TrainResult run_training(const config::RunConfig& cfg, const TrainOptions& opt) {
  const std::string run_dir = opt.out_dir.empty() ? default_run_dir(cfg.file) : opt.out_dir;
  const bool fresh = opt.resume.empty();
  // Refuse at once, before any work, when a fresh run would land on an earlier one.
  if (fresh && !opt.force) prepare_fresh_run_folder(run_dir, false);
  set_num_threads(static_cast<int>(cfg.train.threads));
  check_deploy_target(cfg);  // a recipe that cannot deploy is refused before any work
  Run run = build_run(cfg);
  const int64_t channels = run.built.input.rank() == 3 ? run.built.input[0] : 1;
  if (!opt.quiet && channels > 1 && cfg.data.mean.size() == 1)
    std::fprintf(stderr, "note: data.mean and data.std have one value each; it is applied to all %lld input channels "
                         "(give %lld values to set each channel)\n",
                 static_cast<long long>(channels), static_cast<long long>(channels));
  nn::Graph& model = *run.built.graph;
  data::DataLoader& train_loader = *run.train_loader;
  optim::Optimizer& optimizer = *run.optimizer;
  const quant::QuantRecipe recipe = quant::parse_recipe(cfg.quant, cfg.source);
  const std::string config_text = config::to_yaml(cfg.resolved);

  persist::TrainProgress prog;
  prog.threads = num_threads();
  std::vector<EpochMetrics> history;
  LB_CHECK(opt.resume.empty() || opt.init_weights.empty(),
           "--init starts a fresh run from a checkpoint's weights and --resume continues a run: give one of them");
  if (!opt.init_weights.empty()) {  // weights only; a float checkpoint into a QAT run: fresh quantizers
    std::vector<std::string> fresh;
    persist::load_model_state(opt.init_weights, model, true, &fresh);
    if (!fresh.empty() && !opt.quiet)
      std::fprintf(stderr, "note: --init: %zu quantizer tensors (%s, ...) are not in %s; the quantizers start fresh "
                   "and collect their statistics from the data\n", fresh.size(), fresh[0].c_str(), opt.init_weights.c_str());
  }
  if (!opt.resume.empty()) {
    persist::CheckpointParts parts = persist::read_checkpoint_info(opt.resume);
    persist::load_model_state(opt.resume, model);
    persist::load_training_state(opt.resume, model, optimizer, *run.schedule);
    LB_CHECK(parts.progress.threads == prog.threads, "resume: ", opt.resume, " was written with ", parts.progress.threads,
             " threads but this run uses ", prog.threads, ": pass --threads ", parts.progress.threads,
             " for a bit-identical continuation");
    prog = parts.progress;
    // Nothing left to train: say so. The metrics files are still rewritten from the checkpoint
    // below (that repairs a run killed between its last checkpoint and its metrics line).
    if (prog.epoch >= cfg.train.epochs)
      std::fprintf(stderr,
                   "resume: %s already finished all %lld epochs; nothing to train. To continue it, raise "
                   "train.epochs (e.g. lowbit train --resume %s train.epochs=%lld)\n",
                   opt.resume.c_str(), static_cast<long long>(cfg.train.epochs),
                   fs::path(opt.resume).parent_path().string().c_str(), static_cast<long long>(cfg.train.epochs + 10));
    history = parse_jsonl(parts.metrics_jsonl);
  }
  // Everything loaded: only now does --force move an old run aside.
  if (fresh) {
    const std::string moved = prepare_fresh_run_folder(run_dir, opt.force);
    if (!moved.empty()) std::fprintf(stderr, "--force: the earlier run in %s moved to %s\n", run_dir.c_str(), moved.c_str());
  }
  fs::create_directories(run_dir);
  record_invocation(run_dir, opt.command_line, !fresh);
  {
    std::ofstream f(run_dir + "/config.yaml");
    LB_CHECK(f.good(), "cannot write ", run_dir, "/config.yaml");
    f << "# resolved config of " << cfg.file << " (defaults + file + overrides)\n" << config_text;
  }
  MetricsLog metrics(run_dir);
  if (!opt.resume.empty()) metrics.reset(history);
  const std::string last_path = run_dir + "/last.h5", best_path = run_dir + "/best.h5";
  auto save = [&](const std::string& path) {
    persist::save_checkpoint(path, model, &optimizer, run.schedule.get(), {config_text, history_jsonl(history), prog});
  };

  const bool tty = !opt.quiet && stderr_is_tty();
  const auto run_start = std::chrono::steady_clock::now();
  const double wall_offset = prog.wall_time;
  auto wall = [&] { return wall_offset + std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count(); };
  TrainResult result;
  result.run_dir = run_dir;
  double ips_sum = 0;
  int64_t ips_count = 0;
  const int64_t nb = train_loader.batches_per_epoch();
  const InterruptGuard interrupt_guard;  // Ctrl-C: finish the step, save, stop (train/interrupt.h)
  auto stop_for_signal = [&](int64_t epoch) {
    result.interrupted_by = pending_interrupt();
    result.stopped_epoch = epoch + 1;
    result.stopped_step = prog.step;
    return result;
  };
  for (int64_t epoch = prog.epoch; epoch < cfg.train.epochs; ++epoch) {
    quant::start_epoch(model, epoch);  // batch-norm folding switches on after its delay
    model.train();
    train_loader.start_epoch(epoch);
    int64_t it = 0;
    if (prog.batches_done > 0) {  // resuming mid-epoch
      train_loader.skip_batches(prog.batches_done);
      it = prog.batches_done;
    } else {
      prog.epoch_loss_sum = prog.epoch_correct = prog.epoch_seen = 0;
    }
    ProgressBar bar("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(cfg.train.epochs), nb, tty);
    data::Batch b;
    int64_t seen_now = 0;
    char post[64] = "";
    while (train_loader.next(b)) {
      run.schedule->set_epoch(epoch, it, nb);
      // Any NaN/Inf (loss, gradient, quantizer scale or state) stops the run naming the step,
      // the layer and the quantizer.
      auto at = [&] { return "training diverged at epoch " + std::to_string(epoch + 1) + ", step " + std::to_string(prog.step + 1); };
      Variable logits, loss;
      float lv = 0;
      try {
        logits = model.forward(Variable(b.x));
        loss = ops::cross_entropy(logits, b.y);
        lv = loss.data().item();
        if (recipe.bit_cost > 0)
          if (Variable cost = quant::weight_bit_cost(model); cost.defined())
            loss = ops::add(loss, ops::mul_scalar(cost, static_cast<float>(recipe.bit_cost)));
      } catch (const Error& e) {
        throw Error(at() + ": " + e.what());
      }
      if (!std::isfinite(loss.data().item())) {
        const std::string where = quant::locate_nonfinite(model, b.x);
        LB_FAIL(at(), ": the loss is ", loss.data().item(), where.empty() ? "" : "; " + where,
                " (lower optimizer.lr or check the data normalization)");
      }
      optimizer.zero_grad();
      loss.backward();
      if (std::string bad = quant::check_gradients(model); !bad.empty()) LB_FAIL(at(), ": ", bad);
      optimizer.step();
      if (std::string bad = quant::check_quantizer_state(model); !bad.empty())
        LB_FAIL(at(), ": after the optimizer step, ", bad, " is not finite");
      ++prog.step;
      ++it;
      const int64_t bs = b.y.size(0);
      prog.epoch_loss_sum += lv * static_cast<double>(bs);
      prog.epoch_correct += static_cast<double>(count_correct(logits.data(), b.y));
      prog.epoch_seen += static_cast<double>(bs);
      seen_now += bs;
      prog.batches_done = it;
      if (cfg.train.save_every_steps > 0 && prog.step % cfg.train.save_every_steps == 0 && it < nb) {
        prog.wall_time = wall();
        save(last_path);
      }
      std::snprintf(post, sizeof post, "loss=%.4f", prog.epoch_loss_sum / prog.epoch_seen);
      if (!opt.quiet) bar.update(it, seen_now, post);
      if (pending_interrupt() && it < nb) {  // mid-epoch: a step checkpoint, as save_every_steps writes
        prog.wall_time = wall();
        save(last_path);
        return stop_for_signal(epoch);
      }
    }
    bar.stop();  // the evaluation below is not training time (metrics.csv and the final line agree)
    const double train_time = bar.elapsed();
    EvalResult ev = evaluate(model, *run.test_loader);
    EpochMetrics m;
    m.epoch = epoch + 1;
    m.step = prog.step;
    m.lr = optimizer.lr(0);
    m.train_loss = prog.epoch_loss_sum / prog.epoch_seen;
    m.train_acc = prog.epoch_correct / prog.epoch_seen;
    m.test_loss = ev.loss;
    m.test_acc = ev.acc;
    m.img_per_s = static_cast<double>(seen_now) / train_time;
    m.epoch_time = train_time;
    m.wall_time = wall();
    history.push_back(m);
    ips_sum += m.img_per_s;
    ++ips_count;
    prog.epoch = epoch + 1;
    prog.batches_done = 0;
    prog.epoch_loss_sum = prog.epoch_correct = prog.epoch_seen = 0;
    prog.wall_time = m.wall_time;
    const bool best = ev.acc > prog.best_test_acc;
    if (best) prog.best_test_acc = ev.acc;
    save(last_path);  // checkpoint first: metrics never list an epoch the checkpoint lacks
    if (best) save(best_path);
    metrics.append(m);
    if (!opt.quiet) {
      char fin[128];
      std::snprintf(fin, sizeof fin, "loss=%.4f, test_loss=%.4f, test_acc=%.4f", m.train_loss, m.test_loss, m.test_acc);
      bar.finish(seen_now, fin);
    }
    if (pending_interrupt()) return stop_for_signal(epoch);  // the epoch's checkpoint is written
  }
  LB_CHECK(!history.empty(), "resume: ", opt.resume, " already finished all ", cfg.train.epochs, " epochs (raise train.epochs to continue)");
  if (recipe.enabled) {  // the weight-bit count (learned bit widths end where they rounded)
    const quant::WeightBits wb = quant::weight_bits(model);
    result.weight_bits = wb.total_bits;
    std::ofstream f(run_dir + "/weight_bits.txt");
    f << "weight_bits=" << wb.total_bits << "\n# " << quant::weight_bits_summary(wb) << "\n";
    if (!opt.quiet) std::fprintf(stderr, "weight bits: %s\n", quant::weight_bits_summary(wb).c_str());
  }
  result.test_acc = history.back().test_acc;
  result.test_loss = history.back().test_loss;
  result.train_img_per_s = ips_count ? ips_sum / static_cast<double>(ips_count) : 0;
  return result;
}

}  // namespace lowbit::train
