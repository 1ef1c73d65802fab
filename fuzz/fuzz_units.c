/* libFuzzer harness: the unit and quantity parser. The first byte picks the
 * entry point (unit, quantity, quantity of a dimension, number) and, for a
 * dimension, which one; the rest is the text. What parses is described and
 * spelled back as a unit, and a quantity's unit text must parse again to
 * the same dimension. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ketasim/units.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void describe(ks_dims d) {
  char a[64], b[64];
  ks_dims_describe(d, a, sizeof a);
  ks_dims_unit(d, b, sizeof b);
  double f;
  ks_dims back;
  ks_error err;
  ks_error_clear(&err);
  /* the unit text ketasim writes into output files reads back as itself */
  if (ks_unit_parse(b, NULL, &f, &back, &err) == KS_OK &&
      !ks_dims_equal(back, d) && strchr(b, '?') == NULL)
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const ks_dims wanted[] = {
      KS_DIM_NONE,       KS_DIM_TIME,         KS_DIM_MASS, KS_DIM_VOLUME,
      KS_DIM_FLOW,       KS_DIM_RATE_CONST,   KS_DIM_CONC, KS_DIM_MASS_RATE,
      KS_DIM_MOLAR_MASS, KS_DIM_PER_BODY_MASS};
  if (size < 1 || size > 4096)
    return 0;
  char *text = malloc(size);
  if (!text)
    return 0;
  memcpy(text, data + 1, size - 1);
  text[size - 1] = '\0';
  ks_srcloc loc = {"fuzz.yaml", 1, 1};
  ks_error err;
  ks_error_clear(&err);
  ks_quantity q;
  double f;
  ks_dims d;
  unsigned sel = data[0];
  switch (sel % 4) {
  case 0:
    if (ks_unit_parse(text, &loc, &f, &d, &err) == KS_OK)
      describe(d);
    break;
  case 1:
    if (ks_quantity_parse(text, &loc, &q, &err) == KS_OK)
      describe(q.dims);
    break;
  case 2: {
    ks_dims w = wanted[(sel / 4) % (sizeof wanted / sizeof *wanted)];
    if (ks_quantity_parse_as(text, &loc, w, (sel & 0x80) != 0, "1 mg", &q,
                             &err) == KS_OK)
      describe(q.dims);
    break;
  }
  default:
    (void)ks_number_parse(text, &loc, &f, &err);
    break;
  }
  char line[1024];
  ks_error_format(&err, line, sizeof line);
  free(text);
  return 0;
}
