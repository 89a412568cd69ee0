// `lowbit export mcu`: an integer network as a C99 project folder (docs/mcu-export.md).
//
//   <name>.h / <name>.c   the API and the network (constant parameters, arena layout, steps)
//   lowbit_rt.h           integer helpers (requantization, packed fields, the class decision)
//   host_runner.c         runs it on IDX files on the host (make host)
//   qemu_main.c, startup_cm4.c, mps2_an386.ld, test_images.h
//                         a Cortex-M4 program for QEMU's mps2-an386 (make cm4, make qemu)
//   Makefile, report.txt, report.json, .lowbit-mcu-export (marks the folder as an export)
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "intnet/int_network.h"
#include "mcu/c_source.h"
#include "mcu/memory_plan.h"

namespace lowbit::mcu {

struct ExportOptions {
  std::string name;                 // C identifier prefix (lowercase letters, digits, _)
  std::string source;               // the run folder or checkpoint, for comments and the report
  std::vector<float> pixel_values;  // (C, 256): the float the model saw for each byte value per channel
  std::vector<uint8_t> images;      // (N, C, H, W) test images compiled into the QEMU program
  std::vector<int32_t> labels;      // (N)
  // The planner's `exact` figures for this network and the run's limits (-1: none), for the report.
  int64_t plan_flash = -1, plan_ram = -1, limit_flash = -1, limit_ram = -1;
};

// What the cross build and the QEMU run measured (-1: not measured).
struct Measurements {
  int64_t text_bytes = -1, data_bytes = -1, bss_bytes = -1;  // arm-none-eabi-size of the ELF
  int64_t network_text_bytes = -1;   // .text + .rodata of <name>.o (code and constants of the network)
  int64_t stack_static = -1;         // -fstack-usage: classify + the deepest step
  int64_t stack_measured = -1;       // painted stack high-water mark in QEMU (the whole program)
  int64_t instructions = -1;         // per inference, QEMU -icount + SysTick
  std::vector<int64_t> step_instructions;
  std::string why_not;               // why nothing was measured
};

struct ExportSummary {
  MemoryPlan plan;
  std::vector<StepBytes> bytes;      // per step
  int64_t weight_bytes = 0, param_bytes = 0, table_bytes = 0, macs = 0;
};

// Writes the project into `dir` (which must not exist). Throws a lowbit::Error naming the
// network node for a network the exporter cannot run.
ExportSummary write_mcu_project(const intnet::Network& net, const ExportOptions& opt, const std::string& dir);

// report.txt and report.json in `dir`.
void write_report(const intnet::Network& net, const ExportOptions& opt, const ExportSummary& s, const Measurements& m,
                  const std::string& dir);

// A C identifier from a network name ("LeNet-5" -> "lenet_5").
std::string c_name(const std::string& network_name);

}  // namespace lowbit::mcu
