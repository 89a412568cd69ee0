/* qemu_main.c: classifies the test images compiled into test_images.h on a Cortex-M4 (QEMU
   mps2-an386), printing the same lines as host_runner, then per step and in total the
   instructions counted by SysTick under -icount (instructions = ticks * 40 / 2^ICOUNT_SHIFT:
   the 25 MHz processor clock ticks every 40 ns of virtual time, each instruction takes
   2^ICOUNT_SHIFT ns), and the stack high-water mark measured by painting the stack. */
#include <stdint.h>
#include <stdio.h>

#include "@NAME@.h"
#include "test_images.h"

#ifndef ICOUNT_SHIFT
#define ICOUNT_SHIFT 5
#endif
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

static volatile uint32_t lb_wraps;
void SysTick_Handler(void) { ++lb_wraps; }

static uint64_t lb_ticks(void) {
  uint32_t w, v;
  do { w = lb_wraps; v = SYST_CVR; } while (w != lb_wraps);
  return ((uint64_t)w << 24) + (0xFFFFFFu - v);
}

static uint64_t lb_step_ticks[@UNAME@_STEPS];
static uint64_t lb_last;
static void lb_hook(void *ctx, int step) {
  const uint64_t t = lb_ticks();
  (void)ctx;
  lb_step_ticks[step] += t - lb_last;
  lb_last = t;
}

static void print_ratio(const char *key, uint64_t num, uint64_t den) { /* key=X.YY without float */
  const uint64_t h = den ? num * 100u / den : 0;
  printf("%s=%lu.%02lu", key, (unsigned long)(h / 100u), (unsigned long)(h % 100u));
}

extern uint32_t __stack_limit, __StackTop;
#define LB_PAINT 0xA5A5A5A5u

static @NAME@_arena_t arena;

int main(void) {
  int32_t logits[@UNAME@_CLASSES];
  uint64_t total = 0, macs = 0, instr;
  int i, k, correct = 0;
  volatile uint32_t *p;
  uint32_t here;
  SYST_RVR = 0xFFFFFFu;
  SYST_CVR = 0;
  SYST_CSR = 7u; /* processor clock, interrupt on wrap, enabled */
  /* Paint the free stack below this frame (keep 256 bytes of margin for the current frames). */
  for (p = &__stack_limit; p < (volatile uint32_t *)((uintptr_t)&here - 256u); ++p) *p = LB_PAINT;
  for (i = 0; i < LB_TEST_IMAGES; ++i) {
    uint64_t t0;
    int c;
    lb_last = t0 = lb_ticks();
    c = @NAME@_classify_traced(lb_test_images[i], &arena, logits, lb_hook, 0);
    total += lb_ticks() - t0;
    printf("img %d class %d logits", i, c);
    for (k = 0; k < @UNAME@_CLASSES; ++k) printf(" %ld", (long)logits[k]);
    printf("\n");
    correct += c == lb_test_labels[i];
  }
  for (k = 0; k < @UNAME@_STEPS; ++k) {
    const uint64_t si = lb_step_ticks[k] * 40u / (1u << ICOUNT_SHIFT) / LB_TEST_IMAGES;
    macs += @NAME@_steps[k].macs;
    printf("step %d %s %s macs=%lu instructions=%lu ", k, @NAME@_steps[k].name, @NAME@_steps[k].kind,
           (unsigned long)@NAME@_steps[k].macs, (unsigned long)si);
    print_ratio("macs_per_instruction", @NAME@_steps[k].macs, si);
    printf("\n");
  }
  for (p = &__stack_limit; p < &__StackTop && *p == LB_PAINT; ++p) {
  }
  printf("stack_bytes_measured=%lu\n", (unsigned long)((uintptr_t)&__StackTop - (uintptr_t)p));
  instr = total * 40u / (1u << ICOUNT_SHIFT) / LB_TEST_IMAGES;
  printf("images=%d accuracy=%d.%04d instructions_per_inference=%lu ", LB_TEST_IMAGES, correct / LB_TEST_IMAGES,
         correct * 10000 / LB_TEST_IMAGES % 10000, (unsigned long)instr);
  print_ratio("macs_per_instruction", macs, instr);
  printf("\n");
  return 0;
}
