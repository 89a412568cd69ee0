#include "data/dataset.h"

namespace lowbit::data {

void check_dataset(const Dataset& ds) {
  const std::string& n = ds.name;
  LB_CHECK(ds.images.defined() && ds.labels.defined(), "data set '", n, "' has no images or labels");
  LB_CHECK(ds.images.dtype() == DType::u8 && ds.images.rank() == 4, "data set '", n,
           "': images must be u8 (N, C, H, W), got ", ds.images.str());
  LB_CHECK(ds.labels.dtype() == DType::s32 && ds.labels.rank() == 1, "data set '", n,
           "': labels must be s32 (N), got ", ds.labels.str());
  LB_CHECK(ds.images.is_contiguous() && ds.labels.is_contiguous(), "data set '", n, "': tensors must be contiguous");
  LB_CHECK(ds.images.size(0) == ds.labels.size(0), "data set '", n, "': ", ds.images.size(0), " images but ",
           ds.labels.size(0), " labels");
  for (int d = 1; d < 4; ++d) LB_CHECK(ds.images.size(d) > 0, "data set '", n, "': empty image shape ", ds.images.str());
  LB_CHECK(ds.num_classes > 0, "data set '", n, "': num_classes must be positive, got ", ds.num_classes);
  const int32_t* y = ds.labels.data<int32_t>();
  for (int64_t i = 0; i < ds.labels.numel(); ++i)
    LB_CHECK(y[i] >= 0 && y[i] < ds.num_classes, "data set '", n, "': label ", y[i], " of sample ", i,
             " is outside [0, ", ds.num_classes, ")");
}

std::vector<int64_t> label_histogram(const Dataset& ds) {
  std::vector<int64_t> h(static_cast<size_t>(ds.num_classes > 0 ? ds.num_classes : 0), 0);
  const int32_t* y = ds.labels.data<int32_t>();
  for (int64_t i = 0; i < ds.labels.numel(); ++i)
    if (y[i] >= 0 && y[i] < ds.num_classes) ++h[static_cast<size_t>(y[i])];
  return h;
}

}  // namespace lowbit::data
