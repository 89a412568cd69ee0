#include "kernels/cpu/onednn_context.h"

namespace lowbit::kernels::cpu {

OnednnContext& onednn() {
  static OnednnContext ctx;
  return ctx;
}

}  // namespace lowbit::kernels::cpu
