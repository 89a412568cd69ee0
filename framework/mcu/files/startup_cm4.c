/* startup_cm4.c: reset and vector table for QEMU's mps2-an386 (Cortex-M4F), with newlib's
   semihosting (librdimon) for printf. Enables the FPU before any code that may use it, copies
   .data from flash, zeroes .bss, runs the constructors, then main; exit() ends QEMU. */
#include <stdint.h>
#include <stdlib.h>

extern uint32_t __data_load, __data_start, __data_end, __bss_start__, __bss_end__, __StackTop;
extern int main(void);
extern void initialise_monitor_handles(void);
extern void __libc_init_array(void);
void SysTick_Handler(void);
void Reset_Handler(void);
void _init(void);
void _fini(void);

void Reset_Handler(void) {
  uint32_t *src = &__data_load, *dst = &__data_start;
  *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20; /* CPACR: CP10 and CP11 full access */
  __asm volatile("dsb\n\tisb");
  while (dst < &__data_end) *dst++ = *src++;
  for (dst = &__bss_start__; dst < &__bss_end__;) *dst++ = 0;
  __libc_init_array();
  initialise_monitor_handles();
  exit(main());
}

/* crti/crtn are not linked (-nostartfiles): __libc_init_array's _init and _fini hooks are empty. */
void _init(void) {}
void _fini(void) {}

static void lb_fault(void) {
  for (;;) {
  }
}

__attribute__((section(".isr_vector"), used)) void (*const lb_vectors[16])(void) = {
    (void (*)(void))(uintptr_t)&__StackTop, Reset_Handler, lb_fault, lb_fault, lb_fault, lb_fault, lb_fault, 0, 0, 0,
    0, lb_fault, lb_fault, 0, lb_fault, SysTick_Handler};
