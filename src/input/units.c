/* ketasim — quantities with units: the table, the unit grammar, the number
 * scanner and the dimension helpers declared in ketasim/units.h.
 *
 * All offsets inside this file are byte offsets into the caller's text; they
 * are turned into character counts (UTF-8 code points) only when an error
 * column is computed, because editors and libyaml count columns in
 * characters, and "ng·h/mL" has a two-byte middle dot. */
#include "ketasim/units.h"

#include "util_internal.h"

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Index of each base dimension in an exponent accumulator. */
enum { DIM_M, DIM_B, DIM_V, DIM_T, DIM_N, DIM_COUNT };

/* Brace initialisers for the static tables: the KS_DIM_* macros are compound
 * literals, which are not constant expressions in C11. */
/* clang-format 14 splits a brace initialiser macro over two lines. */
/* clang-format off */
#define D_TIME {0, 0, 0, 1, 0}
#define D_MASS {1, 0, 0, 0, 0}
#define D_VOLUME {0, 0, 1, 0, 0}
#define D_SUBST {0, 0, 0, 0, 1}
/* clang-format on */

/* The micro sign U+00B5 (what the header documents) and the Greek small mu
 * U+03BC (what Greek keyboards and many PDFs produce; they look identical, so
 * rejecting one would be a trap). Escaped so the table does not depend on the
 * source file's encoding. */
#define MICRO "\xC2\xB5"
#define GREEK_MU "\xCE\xBC"

#define MG_PER_KG 1e6
#define MAX_EXPONENT 9
/* Longer "numbers" are rejected, not truncated. */
#define MAX_NUMBER_CHARS 128
#define MAX_QUOTE 60   /* bytes of user text quoted in a message */
#define MAX_SUGGEST 32 /* longer unknown symbols get no suggestion */

typedef struct unit_row {
  const char *symbol;
  double factor; /* multiply by this to get h, mg, L or mmol */
  ks_dims dims;
} unit_row;

/* One row per symbol. On a tie in the "did you mean" suggestion the earlier
 * row wins, so each group starts with its most common symbols: "mgg" must
 * suggest "mg", not "mcg". A mass row used with a negative exponent counts as
 * body mass (see apply_power); the table itself only knows drug mass. */
static const unit_row unit_table[] = {
    {"h", 1.0, D_TIME},
    {"hr", 1.0, D_TIME},
    {"hour", 1.0, D_TIME},
    {"hours", 1.0, D_TIME},
    {"min", 1.0 / 60.0, D_TIME},
    {"s", 1.0 / 3600.0, D_TIME},
    {"sec", 1.0 / 3600.0, D_TIME},
    {"d", 24.0, D_TIME},
    {"day", 24.0, D_TIME},
    {"days", 24.0, D_TIME},
    {"wk", 168.0, D_TIME},
    {"week", 168.0, D_TIME},
    {"weeks", 168.0, D_TIME},
    /* ages: the Julian year of 365.25 days */
    {"y", 8766.0, D_TIME},
    {"yr", 8766.0, D_TIME},
    {"year", 8766.0, D_TIME},
    {"years", 8766.0, D_TIME},
    {"mg", 1.0, D_MASS},
    {"g", 1e3, D_MASS},
    {"kg", 1e6, D_MASS},
    {"ug", 1e-3, D_MASS},
    {MICRO "g", 1e-3, D_MASS},
    {GREEK_MU "g", 1e-3, D_MASS},
    {"mcg", 1e-3, D_MASS},
    {"ng", 1e-6, D_MASS},
    {"L", 1.0, D_VOLUME},
    {"l", 1.0, D_VOLUME},
    {"mL", 1e-3, D_VOLUME},
    {"ml", 1e-3, D_VOLUME},
    {"dL", 0.1, D_VOLUME},
    {"dl", 0.1, D_VOLUME},
    {"uL", 1e-6, D_VOLUME},
    {MICRO "L", 1e-6, D_VOLUME},
    {GREEK_MU "L", 1e-6, D_VOLUME},
    {"mmol", 1.0, D_SUBST},
    {"mol", 1e3, D_SUBST},
    {"umol", 1e-3, D_SUBST},
    {MICRO "mol", 1e-3, D_SUBST},
    {GREEK_MU "mol", 1e-3, D_SUBST},
    {"nmol", 1e-6, D_SUBST},
};

#define UNIT_TABLE_LEN (sizeof unit_table / sizeof unit_table[0])

/* Words written for a unit that are not in the table and too far from any
 * symbol for suggest_unit ("minutes" is 4 edits from "min"), with the symbol
 * to use or why there is none. Matched ignoring ASCII case. */
static const struct {
  const char *word;
  const char *symbol; /* NULL: `why` says what to do */
  const char *why;
} not_units[] = {
    {"minutes", "min", NULL},
    {"minute", "min", NULL},
    {"seconds", "s", NULL},
    {"second", "s", NULL},
    {"months", NULL,
     "months are not a unit because their length varies: give the number of "
     "days ('d') or weeks ('wk')"},
    {"month", NULL,
     "months are not a unit because their length varies: give the number of "
     "days ('d') or weeks ('wk')"},
    {"mo", NULL,
     "months are not a unit because their length varies: give the number of "
     "days ('d') or weeks ('wk')"},
};

/* Names for error messages; everything else is described by its unit. */
static const struct {
  ks_dims dims;
  const char *name;
} dims_names[] = {
    {D_TIME, "time"},
    {D_MASS, "mass"},
    {D_VOLUME, "volume"},
    {{0, 0, 1, -1, 0}, "flow (volume/time)"},
    {{0, 0, 0, -1, 0}, "rate constant (1/time)"},
    {{1, 0, -1, 0, 0}, "concentration"},
    {{1, -1, 0, 0, 0}, "mass per body mass"},
    {{0, 0, 0, 0, 0}, "dimensionless"},
};

/* Internal unit of each base, in the order ks_dims_unit writes them. */
static const struct {
  int base;
  const char *symbol;
} base_units[] = {
    {DIM_M, "mg"}, {DIM_B, "kg"}, {DIM_V, "L"}, {DIM_N, "mmol"}, {DIM_T, "h"},
};

/* ---- dimension arithmetic ---------------------------------------------- */

static void dims_to_array(ks_dims d, int e[DIM_COUNT]) {
  e[DIM_M] = d.m;
  e[DIM_B] = d.b;
  e[DIM_V] = d.v;
  e[DIM_T] = d.t;
  e[DIM_N] = d.n;
}

static ks_dims dims_from_array(const int e[DIM_COUNT]) {
  ks_dims d = {(signed char)e[DIM_M], (signed char)e[DIM_B],
               (signed char)e[DIM_V], (signed char)e[DIM_T],
               (signed char)e[DIM_N]};
  return d;
}

bool ks_dims_equal(ks_dims a, ks_dims b) {
  return a.m == b.m && a.b == b.b && a.v == b.v && a.t == b.t && a.n == b.n;
}

ks_dims ks_dims_mul(ks_dims a, ks_dims b) {
  ks_dims d = {(signed char)(a.m + b.m), (signed char)(a.b + b.b),
               (signed char)(a.v + b.v), (signed char)(a.t + b.t),
               (signed char)(a.n + b.n)};
  return d;
}

ks_dims ks_dims_div(ks_dims a, ks_dims b) {
  ks_dims d = {(signed char)(a.m - b.m), (signed char)(a.b - b.b),
               (signed char)(a.v - b.v), (signed char)(a.t - b.t),
               (signed char)(a.n - b.n)};
  return d;
}

ks_dims ks_dims_without_body(ks_dims d) {
  d.b = 0;
  return d;
}

double ks_mass_to_body_kg(double mass_mg) { return mass_mg / MG_PER_KG; }

/* ---- text output -------------------------------------------------------- */

/* Appends to a fixed buffer, truncating but always terminating. */
typedef struct text_buf {
  char *p;
  size_t size;
  size_t len;
} text_buf;

static void tb_add(text_buf *tb, const char *s) {
  size_t n = strlen(s);
  if (tb->len + 1 < tb->size) {
    size_t room = tb->size - 1 - tb->len;
    size_t k = n < room ? n : room;
    memcpy(tb->p + tb->len, s, k);
    tb->p[tb->len + k] = '\0';
  }
  tb->len += n;
}

static void tb_add_power(text_buf *tb, const char *symbol, int e) {
  tb_add(tb, symbol);
  if (e > 1) {
    char num[16];
    snprintf(num, sizeof num, "^%d", e);
    tb_add(tb, num);
  }
}

/* Writes the numerator (sign > 0) or denominator (sign < 0) factors. */
static int tb_add_side(text_buf *tb, const int e[DIM_COUNT], int sign) {
  int count = 0;
  for (size_t i = 0; i < sizeof base_units / sizeof base_units[0]; i++) {
    int k = sign * e[base_units[i].base];
    if (k <= 0)
      continue;
    if (sign > 0 && count > 0)
      tb_add(tb, "*");
    if (sign < 0)
      tb_add(tb, "/");
    tb_add_power(tb, base_units[i].symbol, k);
    count++;
  }
  return count;
}

/* A buffer that cannot be written to yields "" (a literal, so nothing
 * mutable is shared) rather than NULL, so callers can print the result. */
const char *ks_dims_unit(ks_dims d, char *buf, size_t size) {
  if (!buf || size == 0)
    return "";
  text_buf tb = {buf, size, 0};
  int e[DIM_COUNT];
  dims_to_array(d, e);
  buf[0] = '\0';
  int num = tb_add_side(&tb, e, +1);
  if (num == 0)
    tb_add(&tb, "1");
  tb_add_side(&tb, e, -1);
  return buf;
}

static const char *dims_name(ks_dims d) {
  for (size_t i = 0; i < sizeof dims_names / sizeof dims_names[0]; i++)
    if (ks_dims_equal(d, dims_names[i].dims))
      return dims_names[i].name;
  return NULL;
}

const char *ks_dims_describe(ks_dims d, char *buf, size_t size) {
  if (!buf || size == 0)
    return "";
  const char *name = dims_name(d);
  if (!name)
    return ks_dims_unit(d, buf, size);
  snprintf(buf, size, "%s", name);
  return buf;
}

/* "a time", "an amount", "a dimensionless number", "a quantity in L/kg/h". */
static void dims_phrase(ks_dims d, char *buf, size_t size) {
  const char *name = dims_name(d);
  if (ks_dims_equal(d, KS_DIM_NONE)) {
    snprintf(buf, size, "a dimensionless number");
  } else if (name) {
    bool vowel = strchr("aeiou", name[0]) != NULL;
    snprintf(buf, size, "%s %s", vowel ? "an" : "a", name);
  } else {
    char unit[64];
    snprintf(buf, size, "a quantity in %s", ks_dims_unit(d, unit, sizeof unit));
  }
}

/* ---- errors ------------------------------------------------------------- */

/* What a parser needs to report an error: the whole text (offsets are
 * relative to its start), where it came from, and the record to fill. A NULL
 * err makes a silent probe. */
typedef struct parse_ctx {
  const char *text;
  const ks_srcloc *loc;
  ks_error *err;
} parse_ctx;

static int char_count(const char *s, size_t nbytes) {
  int n = 0;
  for (size_t i = 0; i < nbytes && n < INT_MAX / 2; i++)
    if (((unsigned char)s[i] & 0xC0) != 0x80)
      n++;
  return n;
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static ks_status
fail_at(const parse_ctx *cx, size_t off, const char *fmt, ...) {
  if (!cx->err)
    return KS_ERR_UNIT;
  char msg[sizeof cx->err->message];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (!cx->loc)
    return ks_error_set(cx->err, KS_ERR_UNIT, NULL, "%s", msg);
  ks_srcloc at = *cx->loc;
  if (at.column > 0) /* 0 means unknown and stays unknown */
    at.column += char_count(cx->text, off);
  return ks_error_set(cx->err, KS_ERR_UNIT, &at, "%s", msg);
}

/* How many bytes of a span to quote: at most MAX_QUOTE, never splitting a
 * UTF-8 sequence. Use as "%.*s%s", quote_len(..), s, quote_tail(..). */
static int quote_len(const char *s, size_t n) {
  if (n <= MAX_QUOTE)
    return (int)n;
  size_t k = MAX_QUOTE;
  while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
    k--;
  return (int)k;
}

static const char *quote_tail(size_t n) { return n > MAX_QUOTE ? "..." : ""; }

#define QUOTE(s, n) quote_len((s), (n)), (s), quote_tail(n)

/* ---- lexing ------------------------------------------------------------- */

static bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
         c == '\v';
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static bool is_middle_dot(const char *s, size_t p, size_t end) {
  return p + 1 < end && (unsigned char)s[p] == 0xC2 &&
         (unsigned char)s[p + 1] == 0xB7;
}

/* Symbols are runs of ASCII letters and non-ASCII bytes (µ, μ), except the
 * middle dot, which is an operator. */
static bool is_symbol_byte(const char *s, size_t p, size_t end) {
  unsigned char c = (unsigned char)s[p];
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
    return true;
  return c >= 0x80 && !is_middle_dot(s, p, end);
}

static size_t skip_space(const char *s, size_t p, size_t end) {
  while (p < end && is_space(s[p]))
    p++;
  return p;
}

static void trim(const char *s, size_t *b, size_t *e) {
  *b = skip_space(s, *b, *e);
  while (*e > *b && is_space(s[*e - 1]))
    (*e)--;
}

/* Length in bytes of the operator at p ("/", "*", ".", "·"), 0 if none. */
static size_t operator_len(const char *s, size_t p, size_t end) {
  if (p >= end)
    return 0;
  if (s[p] == '/' || s[p] == '*' || s[p] == '.')
    return 1;
  return is_middle_dot(s, p, end) ? 2 : 0;
}

/* "'x'" for a printable ASCII character, "byte 0x01" otherwise. */
static const char *describe_char(const char *s, size_t p, size_t end, char *buf,
                                 size_t size) {
  unsigned char c = (unsigned char)s[p];
  if (is_middle_dot(s, p, end))
    snprintf(buf, size, "'\xC2\xB7'");
  else if (c >= 0x20 && c < 0x7F)
    snprintf(buf, size, "'%c'", c);
  else
    snprintf(buf, size, "byte 0x%02X", (unsigned)c);
  return buf;
}

/* ---- unit symbols ------------------------------------------------------- */

static const unit_row *find_unit(const char *s, size_t n) {
  for (size_t i = 0; i < UNIT_TABLE_LEN; i++)
    if (strlen(unit_table[i].symbol) == n &&
        memcmp(unit_table[i].symbol, s, n) == 0)
      return &unit_table[i];
  return NULL;
}

static char ascii_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool equal_nocase(const char *a, size_t n, const char *b) {
  if (strlen(b) != n)
    return false;
  for (size_t i = 0; i < n; i++)
    if (ascii_lower(a[i]) != ascii_lower(b[i]))
      return false;
  return true;
}

/* A likely intended symbol: one that differs only in case ("MG", "Kg"),
 * else the nearest within edit distance 2. The distance must also be less
 * than the length of both symbols, or every one-letter typo ("x") would
 * "resemble" every one-letter unit and "xyz" would resemble "y". */
static const char *suggest_unit(const char *s, size_t n) {
  if (n > MAX_SUGGEST)
    return NULL;
  for (size_t i = 0; i < UNIT_TABLE_LEN; i++)
    if (equal_nocase(s, n, unit_table[i].symbol))
      return unit_table[i].symbol;
  const char *best = NULL;
  size_t best_d = 3;
  for (size_t i = 0; i < UNIT_TABLE_LEN; i++) {
    const char *sym = unit_table[i].symbol;
    char word[MAX_SUGGEST + 1];
    memcpy(word, s, n);
    word[n] = '\0';
    size_t d = ks__edit_distance(word, sym, 2);
    if (d < best_d && d < n && d < strlen(sym)) {
      best = sym;
      best_d = d;
    }
  }
  return best;
}

/* ---- unit grammar ------------------------------------------------------- */

/* The unit being built: factor = num / den, dividing once at the end so
 * that "ng/mL" is rounded once rather than once per symbol. */
typedef struct unit_acc {
  double num;
  double den;
  int e[DIM_COUNT];
} unit_acc;

/* Adds symbol^power to the unit. A mass with a net negative power is body
 * mass: "mg/kg" is milligrams of drug per kilogram of patient. */
static void apply_power(unit_acc *acc, const unit_row *row, int power) {
  int e[DIM_COUNT];
  double f = row->factor;
  dims_to_array(row->dims, e);
  if (power < 0 && e[DIM_M] != 0) {
    e[DIM_B] = e[DIM_M];
    e[DIM_M] = 0;
    f /= MG_PER_KG;
  }
  for (int i = 0; i < DIM_COUNT; i++)
    acc->e[i] += power * e[i];
  for (int i = 0; i < abs(power); i++) {
    if (power > 0)
      acc->num *= f;
    else
      acc->den *= f;
  }
}

/* Reads an optional exponent at *p: "^2", "^-1", "-1" or "2". */
static ks_status parse_exponent(const parse_ctx *cx, size_t *p, size_t end,
                                size_t unit_b, int *power) {
  const char *s = cx->text;
  size_t q = *p;
  bool caret = q < end && s[q] == '^';
  if (caret)
    q++;
  bool neg = q < end && s[q] == '-' && q + 1 < end && is_digit(s[q + 1]);
  if (neg)
    q++;
  if (q >= end || !is_digit(s[q])) {
    if (caret)
      return fail_at(cx, *p, "missing exponent after '^' in unit '%.*s%s'",
                     QUOTE(s + unit_b, end - unit_b));
    *power = 1;
    return KS_OK;
  }
  size_t digits = q;
  int value = 0;
  while (q < end && is_digit(s[q])) {
    if (value <= MAX_EXPONENT)
      value = value * 10 + (s[q] - '0');
    q++;
  }
  if (value > MAX_EXPONENT)
    return fail_at(cx, digits,
                   "exponent out of range (-%d..%d) in unit '%.*s%s'",
                   MAX_EXPONENT, MAX_EXPONENT, QUOTE(s + unit_b, end - unit_b));
  *power = neg ? -value : value;
  *p = q;
  return KS_OK;
}

/* Reports why no symbol starts at p. */
static ks_status fail_no_symbol(const parse_ctx *cx, size_t p, size_t end,
                                size_t unit_b) {
  const char *s = cx->text;
  const char *u = s + unit_b;
  size_t un = end - unit_b;
  char what[24];
  if (p >= end)
    return fail_at(cx, p, "incomplete unit '%.*s%s'", QUOTE(u, un));
  if (s[p] == '%')
    return fail_at(cx, p, "'%%' must stand alone, not in unit '%.*s%s'",
                   QUOTE(u, un));
  if (is_digit(s[p]))
    return fail_at(cx, p,
                   "unexpected number in unit '%.*s%s' (only '1/' may "
                   "start a unit)",
                   QUOTE(u, un));
  return fail_at(cx, p, "unexpected character %s in unit '%.*s%s'",
                 describe_char(s, p, end, what, sizeof what), QUOTE(u, un));
}

/* Reports the symbol s[b, e) of the unit s[unit_b, end), which is not in
 * the table, with the symbol meant where one can be guessed. */
static ks_status fail_unknown_symbol(const parse_ctx *cx, size_t b, size_t e,
                                     size_t end, size_t unit_b) {
  const char *s = cx->text;
  size_t n = e - b;
  /* "mg/m2", "mg/m^2", "mg/m²": a dose per square metre of body surface */
  bool m2 =
      (n == 1 && s[b] == 'm' && e < end &&
       (s[e] == '2' || (s[e] == '^' && e + 1 < end && s[e + 1] == '2'))) ||
      (n == 3 && !memcmp(s + b, "m\xC2\xB2", 3));
  if (m2)
    return fail_at(cx, b,
                   "body-surface-area dosing ('%.*s%s') is not supported: "
                   "give the dose in mg or mg/kg",
                   QUOTE(s + unit_b, end - unit_b));
  for (size_t i = 0; i < sizeof not_units / sizeof not_units[0]; i++) {
    if (!equal_nocase(s + b, n, not_units[i].word))
      continue;
    if (not_units[i].symbol)
      return fail_at(cx, b, "unknown unit '%.*s%s' (did you mean '%s'?)",
                     QUOTE(s + b, n), not_units[i].symbol);
    return fail_at(cx, b, "unknown unit '%.*s%s': %s", QUOTE(s + b, n),
                   not_units[i].why);
  }
  const char *hint = suggest_unit(s + b, n);
  if (hint)
    return fail_at(cx, b, "unknown unit '%.*s%s' (did you mean '%s'?)",
                   QUOTE(s + b, n), hint);
  return fail_at(cx, b, "unknown unit '%.*s%s'", QUOTE(s + b, n));
}

/* power := symbol exponent?   `sign` is -1 after a "/". */
static ks_status parse_power(const parse_ctx *cx, size_t *p, size_t end,
                             size_t unit_b, int sign, unit_acc *acc) {
  const char *s = cx->text;
  size_t b = *p;
  while (*p < end && is_symbol_byte(s, *p, end))
    (*p)++;
  if (*p == b)
    return fail_no_symbol(cx, b, end, unit_b);
  const unit_row *row = find_unit(s + b, *p - b);
  if (!row)
    return fail_unknown_symbol(cx, b, *p, end, unit_b);
  int power = 1;
  ks_status rc = parse_exponent(cx, p, end, unit_b, &power);
  if (rc != KS_OK)
    return rc;
  apply_power(acc, row, sign * power);
  return KS_OK;
}

/* Checks the finished unit and hands it out. */
static ks_status finish_unit(const parse_ctx *cx, const unit_acc *acc, size_t b,
                             size_t e, double *factor, ks_dims *dims) {
  const char *u = cx->text + b;
  for (int i = 0; i < DIM_COUNT; i++)
    if (abs(acc->e[i]) > MAX_EXPONENT)
      return fail_at(cx, b, "unit '%.*s%s' has an exponent outside -%d..%d",
                     QUOTE(u, e - b), MAX_EXPONENT, MAX_EXPONENT);
  double f = acc->num / acc->den;
  if (!isfinite(f) || f < DBL_MIN)
    return fail_at(cx, b, "unit '%.*s%s' is out of range", QUOTE(u, e - b));
  *factor = f;
  *dims = dims_from_array(acc->e);
  return KS_OK;
}

/* unit := "" | "1" | "%" | ["1/"] product, over [b, e) of cx->text. This is
 * a small recursive-descent parser; the loop is the product rule. */
static ks_status parse_unit(const parse_ctx *cx, size_t b, size_t e,
                            double *factor, ks_dims *dims) {
  const char *s = cx->text;
  trim(s, &b, &e);
  if (b == e || (e - b == 1 && s[b] == '1')) {
    *factor = 1.0;
    *dims = KS_DIM_NONE;
    return KS_OK;
  }
  if (e - b == 1 && s[b] == '%') {
    *factor = 0.01;
    *dims = KS_DIM_NONE;
    return KS_OK;
  }
  unit_acc acc = {1.0, 1.0, {0}};
  size_t p = b;
  int sign = +1;
  if (s[p] == '1') {
    size_t q = skip_space(s, p + 1, e);
    if (q >= e || s[q] != '/')
      return fail_no_symbol(cx, p, e, b);
    sign = -1;
    p = skip_space(s, q + 1, e);
  }
  for (;;) {
    ks_status rc = parse_power(cx, &p, e, b, sign, &acc);
    if (rc != KS_OK)
      return rc;
    p = skip_space(s, p, e);
    if (p == e)
      break;
    size_t op = operator_len(s, p, e);
    if (op == 0 && is_symbol_byte(s, p, e))
      return fail_at(cx, p, "missing '*' or '/' between units in '%.*s%s'",
                     QUOTE(s + b, e - b));
    if (op == 0)
      return fail_no_symbol(cx, p, e, b);
    sign = s[p] == '/' ? -1 : +1;
    p = skip_space(s, p + op, e);
  }
  return finish_unit(cx, &acc, b, e, factor, dims);
}

ks_status ks_unit_parse(const char *text, const ks_srcloc *loc, double *factor,
                        ks_dims *dims, ks_error *err) {
  if (!text || !factor || !dims)
    return ks_error_set(err, KS_ERR_ARG, loc, "ks_unit_parse: NULL argument");
  parse_ctx cx = {text, loc, err};
  return parse_unit(&cx, 0, strlen(text), factor, dims);
}

/* ---- numbers ------------------------------------------------------------ */

/* Length of the longest prefix of s[p, end) that is a decimal number,
 *   [-+]? ( "." digits | digits ( "." digits? )? ) ( [eE] [-+]? digits )?
 * (YAML 1.2's core-schema float without .inf/.nan), or 0 if none. An
 * incomplete exponent is left alone, so in "2eggs" the number is "2".
 * *nonzero tells whether the mantissa has a non-zero digit, which is how an
 * underflow to zero is told from a literal zero. */
static size_t scan_number(const char *s, size_t p, size_t end, bool *nonzero) {
  size_t q = p, int_digits = 0, frac_digits = 0;
  *nonzero = false;
  if (q < end && (s[q] == '+' || s[q] == '-'))
    q++;
  for (; q < end && is_digit(s[q]); q++, int_digits++)
    *nonzero |= s[q] != '0';
  if (q < end && s[q] == '.') {
    size_t f = q + 1;
    for (; f < end && is_digit(s[f]); f++, frac_digits++)
      *nonzero |= s[f] != '0';
    if (int_digits > 0 || frac_digits > 0)
      q = f;
  }
  if (int_digits == 0 && frac_digits == 0)
    return 0;
  if (q < end && (s[q] == 'e' || s[q] == 'E')) {
    size_t x = q + 1;
    if (x < end && (s[x] == '+' || s[x] == '-'))
      x++;
    if (x < end && is_digit(s[x])) {
      while (x < end && is_digit(s[x]))
        x++;
      q = x;
    }
  }
  return q - p;
}

/* strtod follows LC_NUMERIC, which a host program (a GUI, R, an embedding
 * interpreter) may have set to a locale with a decimal comma. Files always
 * use '.', so the validated text is rewritten with the current separator,
 * found by formatting 1.5 (snprintf is thread-safe; localeconv is not). */
static size_t to_locale_number(const char *s, size_t n, char *out,
                               size_t size) {
  char probe[16], sep[8] = ".";
  int len = snprintf(probe, sizeof probe, "%.1f", 1.5);
  if (len >= 3 && (size_t)len - 2 < sizeof sep) {
    memcpy(sep, probe + 1, (size_t)len - 2);
    sep[len - 2] = '\0';
  }
  size_t k = 0, seplen = strlen(sep);
  for (size_t i = 0; i < n && k + seplen < size; i++) {
    if (s[i] == '.') {
      memcpy(out + k, sep, seplen);
      k += seplen;
    } else {
      out[k++] = s[i];
    }
  }
  out[k] = '\0';
  return k;
}

/* Converts the validated number s[b, b + n). */
static ks_status convert_number(const parse_ctx *cx, size_t b, size_t n,
                                bool nonzero, double *out) {
  const char *s = cx->text + b;
  if (n > MAX_NUMBER_CHARS)
    return fail_at(cx, b, "number too long (over %d characters): '%.*s%s'",
                   MAX_NUMBER_CHARS, QUOTE(s, n));
  char buf[MAX_NUMBER_CHARS + 16];
  size_t len = to_locale_number(s, n, buf, sizeof buf);
  int saved_errno = errno;
  errno = 0;
  char *stop = NULL;
  double v = strtod(buf, &stop);
  bool range = errno == ERANGE;
  errno = saved_errno;
  if (stop != buf + len)
    return fail_at(cx, b, "'%.*s%s' could not be converted to a number",
                   QUOTE(s, n));
  /* A subnormal result has lost precision: as much an error as overflow. */
  if (range || !isfinite(v) || (nonzero && !(fabs(v) >= DBL_MIN)))
    return fail_at(cx, b, "number out of range: '%.*s%s'", QUOTE(s, n));
  *out = v;
  return KS_OK;
}

/* Where the parts of "<number> [unit]" lie within the text. */
typedef struct value_span {
  size_t begin, end; /* the trimmed text */
  size_t unit;       /* start of the unit; == end when there is none */
  double number;
} value_span;

static size_t word_end(const char *s, size_t p, size_t end) {
  while (p < end && !is_space(s[p]))
    p++;
  return p;
}

/* Explains why no number starts at vs->begin. */
static ks_status fail_not_number(const parse_ctx *cx, const value_span *vs) {
  const char *s = cx->text;
  double f;
  ks_dims d;
  parse_ctx probe = {s, NULL, NULL};
  size_t w = word_end(s, vs->begin, vs->end);
  if (parse_unit(&probe, vs->begin, vs->end, &f, &d) == KS_OK)
    return fail_at(cx, vs->begin, "missing number before unit '%.*s%s'",
                   QUOTE(s + vs->begin, vs->end - vs->begin));
  return fail_at(cx, vs->begin, "'%.*s%s' is not a number",
                 QUOTE(s + vs->begin, w - vs->begin));
}

/* Rejects what directly follows a number and would otherwise be read as a
 * unit or an operator: "0x10", "1,000", "1_000", "1.2.3". */
static ks_status check_number_end(const parse_ctx *cx, const value_span *vs,
                                  size_t num_end) {
  const char *s = cx->text;
  char c = num_end < vs->end ? s[num_end] : '\0';
  size_t w = word_end(s, vs->begin, vs->end);
  const char *word = s + vs->begin;
  size_t wn = w - vs->begin;
  size_t digits = num_end - vs->begin;
  if (s[vs->begin] == '+' || s[vs->begin] == '-')
    digits--;
  if ((c == 'x' || c == 'X') && digits == 1 && s[num_end - 1] == '0')
    return fail_at(cx, vs->begin,
                   "'%.*s%s' is not a number (hexadecimal is not allowed)",
                   QUOTE(word, wn));
  if (c == ',' || c == '_')
    return fail_at(cx, vs->begin,
                   "'%.*s%s' is not a number (no digit separators; the "
                   "decimal point is '.')",
                   QUOTE(word, wn));
  if (c == '.')
    return fail_at(cx, vs->begin, "'%.*s%s' is not a number", QUOTE(word, wn));
  return KS_OK;
}

/* Splits and checks "<number> [unit]"; converts the number, not the unit. */
static ks_status scan_value(const parse_ctx *cx, value_span *vs) {
  const char *s = cx->text;
  vs->begin = 0;
  vs->end = strlen(s);
  trim(s, &vs->begin, &vs->end);
  if (vs->begin == vs->end)
    return fail_at(cx, vs->begin, "empty value: expected a number");
  bool nonzero = false;
  size_t n = scan_number(s, vs->begin, vs->end, &nonzero);
  if (n == 0)
    return fail_not_number(cx, vs);
  ks_status rc = check_number_end(cx, vs, vs->begin + n);
  if (rc == KS_OK)
    rc = convert_number(cx, vs->begin, n, nonzero, &vs->number);
  vs->unit = skip_space(s, vs->begin + n, vs->end);
  return rc;
}

static ks_status parse_quantity(const parse_ctx *cx, value_span *vs,
                                ks_quantity *q) {
  ks_status rc = scan_value(cx, vs);
  if (rc != KS_OK)
    return rc;
  double factor;
  ks_dims dims;
  rc = parse_unit(cx, vs->unit, vs->end, &factor, &dims);
  if (rc != KS_OK)
    return rc;
  double v = vs->number * factor;
  if (!isfinite(v) || (vs->number != 0.0 && !(fabs(v) >= DBL_MIN))) {
    char unit[64];
    return fail_at(cx, vs->begin,
                   "value out of range once converted to %s: '%.*s%s'",
                   ks_dims_unit(dims, unit, sizeof unit),
                   QUOTE(cx->text + vs->begin, vs->end - vs->begin));
  }
  q->value = v;
  q->dims = dims;
  return KS_OK;
}

ks_status ks_quantity_parse(const char *text, const ks_srcloc *loc,
                            ks_quantity *q, ks_error *err) {
  if (!text || !q)
    return ks_error_set(err, KS_ERR_ARG, loc,
                        "ks_quantity_parse: NULL argument");
  parse_ctx cx = {text, loc, err};
  value_span vs;
  return parse_quantity(&cx, &vs, q);
}

ks_status ks_quantity_parse_as(const char *text, const ks_srcloc *loc,
                               ks_dims want, bool allow_per_body,
                               const char *example, ks_quantity *q,
                               ks_error *err) {
  if (!text || !q)
    return ks_error_set(err, KS_ERR_ARG, loc,
                        "ks_quantity_parse_as: NULL argument");
  parse_ctx cx = {text, loc, err};
  value_span vs;
  ks_quantity got;
  ks_status rc = parse_quantity(&cx, &vs, &got);
  if (rc != KS_OK)
    return rc;
  ks_dims per_body = want;
  per_body.b = (signed char)(want.b - 1);
  if (ks_dims_equal(got.dims, want) ||
      (allow_per_body && ks_dims_equal(got.dims, per_body))) {
    *q = got;
    return KS_OK;
  }
  char expected[96], alt[96] = "", eg[96] = "", got_name[64];
  dims_phrase(want, expected, sizeof expected);
  if (allow_per_body) {
    char phrase[88];
    dims_phrase(per_body, phrase, sizeof phrase);
    snprintf(alt, sizeof alt, " or %s", phrase);
  }
  if (example)
    snprintf(eg, sizeof eg, " (e.g. '%.*s%s')",
             QUOTE(example, strlen(example)));
  size_t at = vs.unit < vs.end ? vs.unit : vs.begin;
  return fail_at(&cx, at, "expected %s%s%s, got '%.*s%s' (%s)", expected, alt,
                 eg, QUOTE(text + vs.begin, vs.end - vs.begin),
                 ks_dims_describe(got.dims, got_name, sizeof got_name));
}

ks_status ks_number_parse(const char *text, const ks_srcloc *loc, double *out,
                          ks_error *err) {
  if (!text || !out)
    return ks_error_set(err, KS_ERR_ARG, loc, "ks_number_parse: NULL argument");
  parse_ctx cx = {text, loc, err};
  value_span vs;
  ks_status rc = scan_value(&cx, &vs);
  if (rc != KS_OK)
    return rc;
  if (vs.unit < vs.end)
    return fail_at(&cx, vs.unit, "expected a plain number, got '%.*s%s'",
                   QUOTE(text + vs.begin, vs.end - vs.begin));
  *out = vs.number;
  return KS_OK;
}
