#include "mcu/mcu_export.h"

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "core/error.h"
#include "core/text_file.h"
#include "mcu_embedded_files.h"

namespace lowbit::mcu {

namespace {

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) s.replace(p, from.size(), to);
  return s;
}

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string test_images_header(const intnet::Network& net, const ExportOptions& o) {
  const int64_t bytes = net.input_shape.at(0) * net.input_shape.at(1) * net.input_shape.at(2);
  const int64_t n = static_cast<int64_t>(o.labels.size());
  LB_CHECK(n > 0 && static_cast<int64_t>(o.images.size()) == n * bytes, "mcu export: ", n, " labels for ",
           o.images.size(), " image bytes (", bytes, " per image)");
  std::ostringstream os;
  os << "/* test_images.h: the first " << n << " test images of " << o.source << " and their labels (uint8 C, H, W). */\n"
     << "#include <stdint.h>\n#define LB_TEST_IMAGES " << n << "\nstatic const uint8_t lb_test_images[" << n << "]["
     << bytes << "] = {\n";
  for (int64_t i = 0; i < n; ++i) {
    os << "  {";
    for (int64_t k = 0; k < bytes; ++k) os << (k % 32 == 0 ? "\n   " : "") << static_cast<int>(o.images[static_cast<size_t>(i * bytes + k)]) << ",";
    os << "},\n";
  }
  os << "};\nstatic const uint8_t lb_test_labels[" << n << "] = {";
  for (int64_t i = 0; i < n; ++i) os << (i % 32 == 0 ? "\n  " : " ") << o.labels[static_cast<size_t>(i)] << ",";
  os << "\n};\n";
  return os.str();
}

std::string opt_number(int64_t v) { return v < 0 ? std::string("-") : std::to_string(v); }

}  // namespace

std::string c_name(const std::string& network_name) {
  std::string s;
  for (char c : network_name) {
    const unsigned char u = static_cast<unsigned char>(c);
    s += std::isalnum(u) ? static_cast<char>(std::tolower(u)) : '_';
  }
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) s = "net_" + s;
  return s;
}

ExportSummary write_mcu_project(const intnet::Network& net, const ExportOptions& opt, const std::string& dir) {
  ExportSummary s;
  s.plan = plan_memory(net);
  const CSource src = write_c_source(net, s.plan, opt.name, opt.pixel_values, opt.source);
  s.bytes = src.bytes;
  for (size_t k = 0; k < src.bytes.size(); ++k) {
    s.weight_bytes += src.bytes[k].weights;
    s.param_bytes += src.bytes[k].params;
    s.table_bytes += src.bytes[k].tables;
    s.macs += s.plan.steps[k].macs;
  }
  std::filesystem::create_directories(dir);
  write_text_file(dir + "/" + opt.name + ".h", src.header);
  write_text_file(dir + "/" + opt.name + ".c", src.source);
  for (const embedded::File& f : embedded::files)
    write_text_file(dir + "/" + f.name, replace_all(replace_all(f.text, "@NAME@", opt.name), "@UNAME@", upper(opt.name)));
  write_text_file(dir + "/test_images.h", test_images_header(net, opt));
  write_text_file(dir + "/.lowbit-mcu-export", "lowbit export mcu\nsource: " + opt.source + "\n");
  return s;
}

void write_report(const intnet::Network& net, const ExportOptions& opt, const ExportSummary& s, const Measurements& m,
                  const std::string& dir) {
  const int64_t flash = s.weight_bytes + s.param_bytes + s.table_bytes;
  std::ostringstream t;
  t << "lowbit export mcu: " << opt.name << " from " << opt.source << "\n"
    << "rounding " << intnet::rounding_name(net.rounding) << ", input " << net.input_shape[0] << "x" << net.input_shape[1] << "x"
    << net.input_shape[2] << " uint8, " << s.macs << " MACs per inference\n\n"
    << "step  name                 kind        bits  weights B  params B  tables B  arena offset  arena B        MACs";
  if (!m.step_instructions.empty()) t << "  instructions  MACs/instr";
  t << "\n";
  for (size_t k = 0; k < s.plan.steps.size(); ++k) {
    const Step& st = s.plan.steps[k];
    const intnet::Value& v = net.value(st.output);
    const Buffer& b = s.plan.buffers[static_cast<size_t>(s.plan.buffer_of_value[static_cast<size_t>(st.output)])];
    char line[256];
    std::snprintf(line, sizeof line, "%4zu  %-20s %-10s %5d %10lld %9lld %9lld %13lld %8lld %11lld", k, st.name.c_str(),
                  step_kind_name(st.kind), storage_of(v).bits, static_cast<long long>(s.bytes[k].weights),
                  static_cast<long long>(s.bytes[k].params), static_cast<long long>(s.bytes[k].tables),
                  static_cast<long long>(b.offset), static_cast<long long>(storage_bytes(v)), static_cast<long long>(st.macs));
    t << line;
    if (k < m.step_instructions.size()) {
      const int64_t in = m.step_instructions[k];
      std::snprintf(line, sizeof line, "  %12lld  %10.2f", static_cast<long long>(in),
                    in > 0 ? static_cast<double>(st.macs) / static_cast<double>(in) : 0.0);
      t << line;
    }
    t << (st.in_place ? "  (in place)" : "") << "\n";
  }
  t << "\nflash\n"
    << "  weights (ro)      " << s.weight_bytes << " B\n"
    << "  parameters (ro)   " << s.param_bytes << " B  (bias, M0, shift, zero points, thresholds)\n"
    << "  tables (ro)       " << s.table_bytes << " B  (input quantizer on raw bytes, lookup tables)\n"
    << "  network data      " << flash << " B; the plan's exact accounting: " << opt_number(opt.plan_flash)
    << " B (weights + parameters; tables are not in it)\n";
  if (m.network_text_bytes >= 0)
    t << "  code              " << m.network_text_bytes - flash << " B  (" << opt.name << ".o .text+.rodata minus the network data)\n"
      << "  program (QEMU)    text " << m.text_bytes << " B, data " << m.data_bytes << " B, bss " << m.bss_bytes
      << " B (arm-none-eabi-size; newlib's printf included)\n";
  t << "  limit             " << opt_number(opt.limit_flash) << " B\n"
    << "ram\n"
    << "  activations (rw)  " << s.plan.arena_bytes << " B arena; the plan's exact accounting: " << opt_number(opt.plan_ram)
    << " B\n";
  if (m.stack_static >= 0) t << "  stack             " << m.stack_static << " B static estimate (-fstack-usage)";
  if (m.stack_measured >= 0) t << ", " << m.stack_measured << " B measured in QEMU (whole program, printf included)";
  if (m.stack_static >= 0) t << "\n";
  t << "  limit             " << opt_number(opt.limit_ram) << " B\n";
  if (m.instructions >= 0) {
    char line[128];
    std::snprintf(line, sizeof line, "speed\n  instructions per inference %lld (QEMU -icount, SysTick), %.2f MACs per instruction\n",
                  static_cast<long long>(m.instructions), static_cast<double>(s.macs) / static_cast<double>(m.instructions));
    t << line;
  }
  if (!m.why_not.empty()) t << "not measured: " << m.why_not << "\n";
  write_text_file(dir + "/report.txt", t.str());

  std::ostringstream j;
  j << "{\n  \"name\": \"" << opt.name << "\",\n  \"rounding\": \"" << intnet::rounding_name(net.rounding) << "\",\n"
    << "  \"flash_bytes\": " << flash + std::max<int64_t>(0, m.network_text_bytes - flash) << ",\n"
    << "  \"ram_bytes\": " << s.plan.arena_bytes + std::max<int64_t>(0, m.stack_static) << ",\n"
    << "  \"code_bytes\": " << (m.network_text_bytes >= 0 ? m.network_text_bytes - flash : -1) << ",\n"
    << "  \"weight_bytes\": " << s.weight_bytes << ",\n  \"param_bytes\": " << s.param_bytes << ",\n  \"table_bytes\": "
    << s.table_bytes << ",\n  \"arena_bytes\": " << s.plan.arena_bytes << ",\n  \"stack_bytes_static\": " << m.stack_static
    << ",\n  \"stack_bytes_measured\": " << m.stack_measured << ",\n  \"plan_flash_bytes\": " << opt.plan_flash
    << ",\n  \"plan_ram_bytes\": " << opt.plan_ram << ",\n  \"limit_flash_bytes\": " << opt.limit_flash
    << ",\n  \"limit_ram_bytes\": " << opt.limit_ram << ",\n  \"macs\": " << s.macs << ",\n  \"instructions_per_inference\": "
    << m.instructions << ",\n  \"steps\": [\n";
  for (size_t k = 0; k < s.plan.steps.size(); ++k) {
    const Step& st = s.plan.steps[k];
    j << "    {\"name\": \"" << st.name << "\", \"kind\": \"" << step_kind_name(st.kind) << "\", \"weight_bytes\": "
      << s.bytes[k].weights << ", \"param_bytes\": " << s.bytes[k].params << ", \"table_bytes\": " << s.bytes[k].tables
      << ", \"arena_offset\": "
      << s.plan.buffers[static_cast<size_t>(s.plan.buffer_of_value[static_cast<size_t>(st.output)])].offset
      << ", \"macs\": " << st.macs << ", \"instructions\": "
      << (k < m.step_instructions.size() ? m.step_instructions[k] : -1) << "}" << (k + 1 < s.plan.steps.size() ? "," : "")
      << "\n";
  }
  j << "  ]\n}\n";
  write_text_file(dir + "/report.json", j.str());
}

}  // namespace lowbit::mcu
