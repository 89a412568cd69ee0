// `lowbit export mcu RUN -o DIR`: the run's integer network as a C99 project (framework/mcu),
// built for the Cortex-M4 and run in QEMU when the cross tools are installed, so that report.txt
// holds measured code size, stack and instructions. Written into DIR.tmp-PID, renamed at the end.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "commands.h"
#include "core/error.h"
#include "data/transforms.h"
#include "deploy/footprint.h"
#include "deploy/planner_file.h"
#include "mcu/mcu_export.h"
#include "train/trainer.h"
#include "verify/integer_model.h"

namespace fs = std::filesystem;

namespace lowbit::cli {

namespace {

bool on_path(const std::string& tool) {
  return std::system(("command -v " + tool + " >/dev/null 2>&1").c_str()) == 0;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

int run_logged(const std::string& cmd, const std::string& log) {
  const int rc = std::system((cmd + " >" + log + " 2>&1").c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : 1;
}

// The float value the trained model saw for each byte value of each channel: the run's test
// transforms applied to an image holding 0..255 (value transforms only).
std::vector<float> pixel_values(const verify::IntegerModel& m) {
  const data::Transforms t = train::eval_loader_options(m.cfg).transforms;
  for (const data::Transform& x : t.list())
    LB_CHECK(std::holds_alternative<data::ToFloat>(x) || std::holds_alternative<data::Normalize>(x),
             "the run's test transforms (", t.str(), ") move pixels: the MCU export takes the image as the model ",
             "sees it; export a run without random_crop / padding at test time");
  const int64_t c = m.test.channels();
  Tensor img = Tensor::empty({c, 1, 256}, DType::u8);
  for (int64_t ch = 0; ch < c; ++ch)
    for (int p = 0; p < 256; ++p) img.data<uint8_t>()[ch * 256 + p] = static_cast<uint8_t>(p);
  data::CompiledTransforms ct(t, c, 1, 256);
  std::vector<float> out(static_cast<size_t>(c * 256));
  Rng rng(0);
  ct.apply(img.data<uint8_t>(), rng, out.data());
  return out;
}

// arm-none-eabi-size's berkeley line for a file: text data bss.
bool size_of(const std::string& file, int64_t& text, int64_t& data, int64_t& bss, const std::string& log) {
  if (run_logged("arm-none-eabi-size " + file, log) != 0) return false;
  std::istringstream is(read_file(log));
  std::string header;
  std::getline(is, header);
  return static_cast<bool>(is >> text >> data >> bss);
}

// Builds the Cortex-M4 program, checks for float, runs it in QEMU and compares its lines with
// the host runner's on the same images.
mcu::Measurements measure(const std::string& dir, const std::string& name, const mcu::ExportSummary& s) {
  mcu::Measurements m;
  for (const char* tool : {"arm-none-eabi-gcc", "qemu-system-arm", "make"})
    if (!on_path(tool)) {
      m.why_not = std::string(tool) + " is not installed (make install-deps installs the cross tools)";
      return m;
    }
  const std::string mk = "make -s -C " + dir + " ";
  LB_CHECK(run_logged(mk + "cm4 floatcheck", dir + "/build.log") == 0, "the generated Cortex-M4 build failed: see its build.log ",
           "(a Lowbit bug: please report it with the run)");
  int64_t text = 0, data = 0, bss = 0;
  if (size_of(dir + "/" + name + ".elf", text, data, bss, dir + "/size.log")) {
    m.text_bytes = text;
    m.data_bytes = data;
    m.bss_bytes = bss;
  }
  if (size_of(dir + "/" + name + ".o", text, data, bss, dir + "/size.log")) m.network_text_bytes = text + data;
  // -fstack-usage: classify -> classify_traced -> the deepest step.
  {
    std::istringstream su(read_file(dir + "/" + name + ".su"));
    std::string line;
    int64_t outer = 0, deepest = 0;
    const std::regex frame(":([A-Za-z0-9_]+)\\s+(\\d+)\\s");
    while (std::getline(su, line)) {
      std::smatch mt;
      if (!std::regex_search(line, mt, frame)) continue;
      const int64_t b = std::stoll(mt[2]);
      if (mt[1].str().rfind("lb_step_", 0) == 0)
        deepest = std::max(deepest, b);
      else if (mt[1].str().rfind(name + "_classify", 0) == 0)
        outer += b;
    }
    m.stack_static = outer + deepest;
  }
  const std::string qlog = dir + "/qemu.txt";
  LB_CHECK(run_logged("timeout 900 " + mk + "qemu", qlog) == 0, "the QEMU run failed: see its qemu.txt");
  std::istringstream q(read_file(qlog));
  std::string line;
  std::smatch mt;
  const std::regex step_line("^step (\\d+) .* instructions=(\\d+)"), total("instructions_per_inference=(\\d+)"),
      stack("^stack_bytes_measured=(\\d+)");
  while (std::getline(q, line)) {
    if (std::regex_search(line, mt, step_line)) m.step_instructions.push_back(std::stoll(mt[2]));
    if (std::regex_search(line, mt, total)) m.instructions = std::stoll(mt[1]);
    if (std::regex_search(line, mt, stack)) m.stack_measured = std::stoll(mt[1]);
  }
  LB_CHECK(m.instructions > 0 && m.step_instructions.size() == s.plan.steps.size(), "the QEMU run printed no summary: see its qemu.txt");
  return m;
}

}  // namespace

int export_mcu(const std::string& run, const std::string& out, const std::string& rounding, int64_t images, bool do_measure) {
  const fs::path dir(out);
  if (fs::exists(dir) && !fs::exists(dir / ".lowbit-mcu-export"))
    throw Error(out + " exists and is not an earlier `lowbit export mcu` folder: choose another -o, or remove it");
  LB_CHECK(images >= 1 && images <= 10000, "--images must be in [1, 10000], got ", images);
  deploy::LowerOptions lo;
  lo.rounding = intnet::parse_rounding(rounding);
  verify::IntegerModel m = verify::load_integer_model(run, {}, lo);
  for (const std::string& note : m.lowered.notes) std::fprintf(stderr, "note: %s\n", note.c_str());
  const intnet::Network& net = m.lowered.net;

  mcu::ExportOptions o;
  o.name = mcu::c_name(net.name);
  o.source = run;
  o.pixel_values = pixel_values(m);
  const int64_t n = std::min<int64_t>(images, m.test.size()), bytes = m.test.images.numel() / std::max<int64_t>(1, m.test.size());
  o.images.assign(m.test.images.data<uint8_t>(), m.test.images.data<uint8_t>() + n * bytes);
  o.labels.assign(m.test.labels.data<int32_t>(), m.test.labels.data<int32_t>() + n);
  const deploy::Footprint fp = deploy::exact_footprint(net);
  o.plan_flash = fp.flash_bytes;
  o.plan_ram = fp.ram_bytes;
  if (m.cfg.quant && m.cfg.quant["plan"]) {
    const deploy::PlanFile pf = deploy::read_plan_file(m.cfg.quant["plan"].Scalar());
    o.limit_flash = pf.flash_limit;
    o.limit_ram = pf.ram_limit;
  }

  const fs::path tmp = dir.string() + ".tmp-" + std::to_string(::getpid());
  fs::remove_all(tmp);
  try {
    const mcu::ExportSummary s = mcu::write_mcu_project(net, o, tmp.string());
    mcu::Measurements meas;
    if (do_measure)
      meas = measure(tmp.string(), o.name, s);
    else
      meas.why_not = "--no-measure";
    mcu::write_report(net, o, s, meas, tmp.string());
    if (do_measure && meas.why_not.empty()) std::system(("make -s -C " + tmp.string() + " clean >/dev/null 2>&1").c_str());
    fs::remove_all(dir);
    fs::rename(tmp, dir);
    std::printf("%s", read_file((dir / "report.txt").string()).c_str());
    std::printf("wrote %s (%s.h, %s.c, Makefile: make -C %s host | cm4 | qemu)\n", out.c_str(), o.name.c_str(),
                o.name.c_str(), out.c_str());
  } catch (...) {
    std::error_code ec;
    if (fs::exists(tmp / "build.log") || fs::exists(tmp / "qemu.txt")) {
      const fs::path keep = dir.string() + ".failed";
      fs::remove_all(keep, ec);
      fs::rename(tmp, keep, ec);
      std::fprintf(stderr, "lowbit export: the failed build is kept in %s\n", keep.string().c_str());
    } else {
      fs::remove_all(tmp, ec);
    }
    throw;
  }
  return 0;
}

}  // namespace lowbit::cli
