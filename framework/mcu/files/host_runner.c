/* host_runner.c: runs the exported @NAME@ network on IDX test files (gzip or plain) on the host.
   Prints one line per image, "img I class C logits L0 L1 ...", the same lines as `make qemu` and
   as `lowbit verify --dump` (integer_logits.txt), then images=N accuracy=A.
   --dump DIR writes every step's output integers for the first --dump-images images (default 16)
   in the format of `lowbit verify --dump` (DIR/layers/): `lowbit verify RUN --against DIR` then
   names the first layer and image that differ from the integer engine.
   Usage: host_runner --idx IMAGES [--labels LABELS] [--images N] [--dump DIR [--dump-images K]] */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "@NAME@.h"
#include "lowbit_rt.h"

static unsigned long be32(const unsigned char *p) {
  return ((unsigned long)p[0] << 24) | ((unsigned long)p[1] << 16) | ((unsigned long)p[2] << 8) | (unsigned long)p[3];
}

/* Reads an IDX file of unsigned bytes; returns its data and sets count (first dimension) and
   the bytes per item. Exits with a message on any error. */
static unsigned char *read_idx(const char *path, unsigned long *count, unsigned long *item_bytes) {
  gzFile f = gzopen(path, "rb");
  unsigned char head[4], dim[4];
  unsigned long total, i, ndims;
  unsigned char *data;
  if (!f) { fprintf(stderr, "host_runner: cannot open %s\n", path); exit(1); }
  if (gzread(f, head, 4) != 4 || head[0] != 0 || head[1] != 0 || head[2] != 0x08 || head[3] < 1 || head[3] > 4) {
    fprintf(stderr, "host_runner: %s is not an IDX file of unsigned bytes (magic 0x0000080N)\n", path);
    exit(1);
  }
  ndims = head[3];
  *item_bytes = 1;
  for (i = 0; i < ndims; ++i) {
    unsigned long d;
    if (gzread(f, dim, 4) != 4) { fprintf(stderr, "host_runner: %s: truncated header\n", path); exit(1); }
    d = be32(dim);
    if (i == 0) *count = d; else *item_bytes *= d;
  }
  total = *count * *item_bytes;
  data = (unsigned char *)malloc(total ? total : 1);
  if (!data || gzread(f, data, (unsigned)total) != (int)total) {
    fprintf(stderr, "host_runner: %s: truncated data (expected %lu bytes)\n", path, total);
    exit(1);
  }
  gzclose(f);
  return data;
}

static FILE *lb_dump_files[@UNAME@_STEPS];

/* Element i of a step's output in the arena, as an integer (the generated code's own loads). */
static long decode(const uint8_t *p, int32_t i, int bits, int encoding) {
  if (bits == 32) return (long)lb_ld32(p, i);
  if (bits == 16) return (long)lb_ld16(p, i);
  if (bits == 8) return encoding == 1 ? (long)p[i] : (long)lb_sext(p[i], 8);
  if (encoding == 2) return 2 * (long)lb_field(p, i, bits) - 1;
  return encoding == 1 ? (long)lb_field(p, i, bits) : (long)lb_sext(lb_field(p, i, bits), bits);
}

static void dump_step(void *ctx, int step) {
  const @NAME@_step_info *s = &@NAME@_steps[step];
  const uint8_t *base = (const uint8_t *)((@NAME@_arena_t *)ctx)->words + s->offset;
  uint32_t i;
  for (i = 0; i < s->count; ++i) {
    const unsigned long u = (unsigned long)decode(base, (int32_t)i, s->bits, s->encoding) & 0xfffffffful;
    const unsigned char b[4] = {(unsigned char)(u & 0xffu), (unsigned char)((u >> 8) & 0xffu),
                                (unsigned char)((u >> 16) & 0xffu), (unsigned char)(u >> 24)};
    fwrite(b, 1, 4, lb_dump_files[step]);
  }
}

/* DIR/layers/index.txt and one file per step, as `lowbit verify --dump` writes them. */
static void open_dump(const char *dir, unsigned long images) {
  char path[4096];
  FILE *index;
  int k;
  snprintf(path, sizeof path, "%s", dir);
  mkdir(path, 0777);
  snprintf(path, sizeof path, "%s/layers", dir);
  mkdir(path, 0777);
  snprintf(path, sizeof path, "%s/layers/index.txt", dir);
  index = fopen(path, "w");
  if (!index) { fprintf(stderr, "host_runner: cannot write %s\n", path); exit(1); }
  for (k = 0; k < @UNAME@_STEPS; ++k) {
    const @NAME@_step_info *s = &@NAME@_steps[k];
    fprintf(index, "%ld %s %lu %lu\n", (long)s->value, s->name, images, (unsigned long)s->count);
    snprintf(path, sizeof path, "%s/layers/%ld_%s.i32", dir, (long)s->value, s->name);
    lb_dump_files[k] = fopen(path, "wb");
    if (!lb_dump_files[k]) { fprintf(stderr, "host_runner: cannot write %s\n", path); exit(1); }
  }
  fclose(index);
}

int main(int argc, char **argv) {
  const char *idx = 0, *labels_path = 0, *dump = 0;
  unsigned long n = 0, item = 0, ln = 0, lb = 0, i, limit = 0, correct = 0, dump_images = 16;
  unsigned char *images, *labels = 0;
  static @NAME@_arena_t arena;
  int32_t logits[@UNAME@_CLASSES];
  int a;
  for (a = 1; a < argc; ++a) {
    if (!strcmp(argv[a], "--idx") && a + 1 < argc) idx = argv[++a];
    else if (!strcmp(argv[a], "--labels") && a + 1 < argc) labels_path = argv[++a];
    else if (!strcmp(argv[a], "--images") && a + 1 < argc) limit = strtoul(argv[++a], 0, 10);
    else if (!strcmp(argv[a], "--dump") && a + 1 < argc) dump = argv[++a];
    else if (!strcmp(argv[a], "--dump-images") && a + 1 < argc) dump_images = strtoul(argv[++a], 0, 10);
    else {
      fprintf(stderr, "usage: %s --idx IMAGES [--labels LABELS] [--images N] [--dump DIR [--dump-images K]]\n", argv[0]);
      return 2;
    }
  }
  if (!idx) { fprintf(stderr, "host_runner: give --idx IMAGES (an IDX file, gzip or plain)\n"); return 2; }
  images = read_idx(idx, &n, &item);
  if (item != @UNAME@_INPUT_BYTES) {
    fprintf(stderr, "host_runner: %s has %lu bytes per image, the network takes %d (%dx%dx%d)\n", idx, item,
            @UNAME@_INPUT_BYTES, @UNAME@_INPUT_CHANNELS, @UNAME@_INPUT_HEIGHT, @UNAME@_INPUT_WIDTH);
    return 1;
  }
  if (labels_path) {
    labels = read_idx(labels_path, &ln, &lb);
    if (ln != n || lb != 1) {
      fprintf(stderr, "host_runner: %s holds %lu labels of %lu bytes; expected %lu of 1\n", labels_path, ln, lb, n);
      return 1;
    }
  }
  if (limit && limit < n) n = limit;
  if (dump_images > n) dump_images = n;
  if (dump) open_dump(dump, dump_images);
  for (i = 0; i < n; ++i) {
    int c, k;
    if (dump && i < dump_images)
      c = @NAME@_classify_traced(images + i * item, &arena, logits, dump_step, &arena);
    else
      c = @NAME@_classify(images + i * item, &arena, logits);
    printf("img %lu class %d logits", i, c);
    for (k = 0; k < @UNAME@_CLASSES; ++k) printf(" %ld", (long)logits[k]);
    printf("\n");
    if (labels && labels[i] == c) ++correct;
  }
  if (labels)
    printf("images=%lu accuracy=%lu.%04lu\n", n, n ? correct / n : 0, n ? (correct * 10000 / n) % 10000 : 0);
  else
    printf("images=%lu\n", n);
  if (dump) {
    int k;
    for (k = 0; k < @UNAME@_STEPS; ++k) fclose(lb_dump_files[k]);
  }
  free(images);
  free(labels);
  return 0;
}
