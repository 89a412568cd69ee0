// deploy::lowering_refusal: the lowering of an untrained model, for checks before training.
#include "autograd/variable.h"
#include "core/error.h"
#include "core/rng.h"
#include "deploy/lower.h"

namespace lowbit::deploy {

std::string lowering_refusal(nn::Graph& model, const Shape& input, const std::string& name, const LowerOptions& opt) {
  std::vector<int64_t> dims{4};
  dims.insert(dims.end(), input.dims().begin(), input.dims().end());
  Rng rng(12345);
  auto batch = [&] {
    Tensor t = Tensor::empty(Shape(dims));
    for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = rng.normal();
    return Variable(t);
  };
  try {
    NoGradGuard no_grad;
    model.train();
    for (int i = 0; i < 2; ++i) model.forward(batch());
    model.eval();
    model.forward(batch());
    lower(model, input, name, opt);
  } catch (const Error& e) {
    return without_source_locations(e.what());  // the message names the layer
  }
  return "";
}

}  // namespace lowbit::deploy
