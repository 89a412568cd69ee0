// Training throughput of one model on synthetic data: SGD (momentum 0.9) steps on a fixed
// random batch, after warm-up steps. Prints one line:
//   model=NAME mode=float img_s=X steps=N batch=B threads=T rss_mb=M
// bench/run.sh runs this and the PyTorch twin side by side and prints the ratios.
#include <sys/resource.h>

#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>

#include "core/threads.h"
#include "config/model_file.h"
#include "ops/ops.h"
#include "optim/sgd.h"
#include "quant/recipe.h"

namespace po = boost::program_options;
using namespace lowbit;

int main(int argc, char** argv) {
  std::string model_path, name, recipe_path;
  std::vector<std::string> params;
  int64_t batch = 128, steps = 50, warmup = 5;
  int threads = 2;
  po::options_description opts("lowbit-bench options");
  opts.add_options()("help,h", "help")("model", po::value(&model_path)->required(), "model YAML file")(
      "name", po::value(&name), "name printed (default: file stem)")(
      "param", po::value(&params)->composing(), "model parameter k=v (repeatable)")(
      "batch", po::value(&batch), "batch size")("steps", po::value(&steps), "timed steps")(
      "warmup", po::value(&warmup), "untimed steps first")("threads", po::value(&threads), "threads")(
      "recipe", po::value(&recipe_path), "YAML file with a `quant:` recipe (mode=qat)");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, opts), vm);
    if (vm.count("help")) { std::cout << opts; return 0; }
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "lowbit-bench: " << e.what() << "\n" << opts;
    return 2;
  }
  try {
    set_num_threads(threads);
    std::map<std::string, config::ModelParamOverride> ov;
    for (const auto& p : params) {
      auto eq = p.find('=');
      LB_CHECK(eq != std::string::npos, "--param ", p, ": expected k=v");
      ov[p.substr(0, eq)] = {std::stod(p.substr(eq + 1)), "--param " + p};
    }
    config::BuiltModel m = config::build_model(model_path, ov, 0);
    if (!recipe_path.empty()) {
      YAML::Node doc = io::load_yaml_file(recipe_path);
      quant::apply_recipe(*m.graph, quant::parse_recipe(doc["quant"], io::YamlSource{recipe_path, {}}));
    }
    const char* mode = recipe_path.empty() ? "float" : "qat";
    if (name.empty()) name = m.name;
    Rng rng(7);
    Tensor x = Tensor::empty({batch, m.input[0], m.input[1], m.input[2]});
    for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = rng.normal();
    const Shape out = m.graph->infer_shape({x.shape()});
    Tensor y = Tensor::empty({batch}, DType::s32);
    for (int64_t i = 0; i < batch; ++i) y.data<int32_t>()[i] = static_cast<int32_t>(rng.below(static_cast<uint64_t>(out[1])));
    optim::SgdOptions so;
    so.lr = 0.01;
    so.momentum = 0.9;
    optim::SGD opt(m.graph->parameters(), so);
    m.graph->train();
    auto step = [&] {
      Variable loss = ops::cross_entropy(m.graph->forward(Variable(x)), y);
      opt.zero_grad();
      loss.backward();
      opt.step();
    };
    for (int64_t i = 0; i < warmup; ++i) step();
    auto t0 = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < steps; ++i) step();
    double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    std::printf("model=%s mode=%s img_s=%.1f steps=%lld batch=%lld threads=%d rss_mb=%.1f input=%lld,%lld,%lld\n", name.c_str(), mode,
                static_cast<double>(batch * steps) / sec, static_cast<long long>(steps), static_cast<long long>(batch),
                threads, ru.ru_maxrss / 1024.0, static_cast<long long>(m.input[0]),
                static_cast<long long>(m.input[1]), static_cast<long long>(m.input[2]));
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "lowbit-bench: error: %s\n", e.what());
    return 1;
  }
}
