/* Tests for ketasim/units.h. Expected values are worked out by hand from the
 * unit definitions (1 h = 3600 s, 1 mg = 1e6 ng, ...), never taken from the
 * parser's own output. */
#include "ketasim/units.h"

#include <locale.h>

#include "ks_test.h"

#define REL 1e-14

static const ks_srcloc LOC = {"f.yaml", 3, 10};

static ks_dims dims(int m, int b, int v, int t, int n) {
  ks_dims d = {(signed char)m, (signed char)b, (signed char)v, (signed char)t,
               (signed char)n};
  return d;
}

static const char *dims_text(ks_dims d, char *buf, size_t size) {
  snprintf(buf, size, "{m=%d b=%d v=%d t=%d n=%d}", d.m, d.b, d.v, d.t, d.n);
  return buf;
}

static bool close_to(double got, double want) {
  double s = fabs(want) > 0 ? fabs(want) : 1.0;
  return fabs(got - want) <= REL * s;
}

/* Each helper takes the caller's __LINE__ so a failure names the test row. */
static void expect_unit(int line, const char *text, double factor, ks_dims d) {
  ks_error err;
  ks_error_clear(&err);
  double f = -1;
  ks_dims got = dims(9, 9, 9, 9, 9);
  ks_status rc = ks_unit_parse(text, &LOC, &f, &got, &err);
  char a[64], b[64];
  if (rc != KS_OK || !close_to(f, factor) || !ks_dims_equal(got, d)) {
    fprintf(stderr,
            "%s:%d: unit \"%s\": rc %d (%s), factor %.17g %s, want %.17g %s\n",
            __FILE__, line, text, rc, err.message, f,
            dims_text(got, a, sizeof a), factor, dims_text(d, b, sizeof b));
    ks_test_failures_++;
  }
}

static void expect_quantity(int line, const char *text, double value,
                            ks_dims d) {
  ks_error err;
  ks_error_clear(&err);
  ks_quantity q = {-1, {9, 9, 9, 9, 9}};
  ks_status rc = ks_quantity_parse(text, &LOC, &q, &err);
  char a[64], b[64];
  if (rc != KS_OK || !close_to(q.value, value) || !ks_dims_equal(q.dims, d)) {
    fprintf(stderr,
            "%s:%d: quantity \"%s\": rc %d (%s), %.17g %s, want %.17g %s\n",
            __FILE__, line, text, rc, err.message, q.value,
            dims_text(q.dims, a, sizeof a), value, dims_text(d, b, sizeof b));
    ks_test_failures_++;
  }
}

/* Checks a failed parse: status, message, and the error position. */
static void check_error(int line, const char *text, ks_status rc,
                        const ks_error *err, int column, const char *msg) {
  if (rc != KS_ERR_UNIT || err->status != KS_ERR_UNIT ||
      strcmp(err->file, "f.yaml") != 0 || err->line != 3 ||
      err->column != column || strcmp(err->message, msg) != 0) {
    fprintf(stderr,
            "%s:%d: \"%s\": rc %d, %s:%d:%d \"%s\"\n"
            "    want rc %d, f.yaml:3:%d \"%s\"\n",
            __FILE__, line, text, rc, err->file, err->line, err->column,
            err->message, KS_ERR_UNIT, column, msg);
    ks_test_failures_++;
  }
}

static void expect_qerror(int line, const char *text, int column,
                          const char *msg) {
  ks_error err;
  ks_error_clear(&err);
  ks_quantity q = {-7, {0, 0, 0, 0, 0}};
  ks_status rc = ks_quantity_parse(text, &LOC, &q, &err);
  check_error(line, text, rc, &err, column, msg);
  if (q.value != -7) { /* outputs are left alone on failure */
    fprintf(stderr, "%s:%d: \"%s\": output written on failure\n", __FILE__,
            line, text);
    ks_test_failures_++;
  }
}

static void expect_nerror(int line, const char *text, int column,
                          const char *msg) {
  ks_error err;
  ks_error_clear(&err);
  double out = -7;
  ks_status rc = ks_number_parse(text, &LOC, &out, &err);
  check_error(line, text, rc, &err, column, msg);
  KS_CHECK(out == -7);
}

static void expect_as_error(int line, const char *text, ks_dims want,
                            bool per_body, const char *example, int column,
                            const char *msg) {
  ks_error err;
  ks_error_clear(&err);
  ks_quantity q = {-7, {0, 0, 0, 0, 0}};
  ks_status rc =
      ks_quantity_parse_as(text, &LOC, want, per_body, example, &q, &err);
  check_error(line, text, rc, &err, column, msg);
  KS_CHECK(q.value == -7);
}

#define UNIT(text, f, d) expect_unit(__LINE__, text, f, d)
#define QTY(text, v, d) expect_quantity(__LINE__, text, v, d)
#define QERR(text, col, msg) expect_qerror(__LINE__, text, col, msg)
#define NERR(text, col, msg) expect_nerror(__LINE__, text, col, msg)

/* Every row of the unit table, with its factor worked out by hand. */
static void test_every_symbol(void) {
  ks_dims T = dims(0, 0, 0, 1, 0), M = dims(1, 0, 0, 0, 0);
  ks_dims V = dims(0, 0, 1, 0, 0), N = dims(0, 0, 0, 0, 1);
  UNIT("s", 1.0 / 3600, T);
  UNIT("sec", 1.0 / 3600, T);
  UNIT("min", 1.0 / 60, T);
  UNIT("h", 1, T);
  UNIT("hr", 1, T);
  UNIT("hour", 1, T);
  UNIT("hours", 1, T);
  UNIT("d", 24, T);
  UNIT("day", 24, T);
  UNIT("days", 24, T);
  UNIT("wk", 168, T);
  UNIT("week", 168, T);
  UNIT("weeks", 168, T);
  UNIT("ng", 1e-6, M);
  UNIT("ug", 1e-3, M);
  UNIT("\xC2\xB5g", 1e-3, M); /* micro sign */
  UNIT("\xCE\xBCg", 1e-3, M); /* Greek mu */
  UNIT("mcg", 1e-3, M);
  UNIT("mg", 1, M);
  UNIT("g", 1e3, M);
  UNIT("kg", 1e6, M);
  UNIT("uL", 1e-6, V);
  UNIT("\xC2\xB5L", 1e-6, V);
  UNIT("\xCE\xBCL", 1e-6, V);
  UNIT("mL", 1e-3, V);
  UNIT("ml", 1e-3, V);
  UNIT("dL", 0.1, V);
  UNIT("dl", 0.1, V);
  UNIT("L", 1, V);
  UNIT("l", 1, V);
  UNIT("nmol", 1e-6, N);
  UNIT("umol", 1e-3, N);
  UNIT("\xC2\xB5mol", 1e-3, N);
  UNIT("\xCE\xBCmol", 1e-3, N);
  UNIT("mmol", 1, N);
  UNIT("mol", 1e3, N);
}

/* A mass in a denominator is body mass, in kg. */
static void test_body_mass(void) {
  ks_dims MB = dims(1, -1, 0, 0, 0), B = dims(0, -1, 0, 0, 0);
  UNIT("mg/kg", 1, MB);
  UNIT("ug/kg", 1e-3, MB);
  UNIT("mcg/kg", 1e-3, MB);
  UNIT("\xC2\xB5g/kg", 1e-3, MB);
  UNIT("ng/kg", 1e-6, MB);
  UNIT("g/kg", 1e3, MB);
  UNIT("mg/g", 1000, MB);
  UNIT("mg/mg", 1e6, MB);
  UNIT("mg/ng", 1e12, MB);
  UNIT("1/kg", 1, B);
  UNIT("kg^-1", 1, B);
  UNIT("kg-1", 1, B);
  UNIT("1/g", 1000, B);
  UNIT("L/kg", 1, dims(0, -1, 1, 0, 0));
  UNIT("mL/kg", 1e-3, dims(0, -1, 1, 0, 0));
  UNIT("L/h/kg", 1, dims(0, -1, 1, -1, 0));
  UNIT("mL/min/kg", 1e-3 * 60, dims(0, -1, 1, -1, 0));
  UNIT("mg/kg/h", 1, dims(1, -1, 0, -1, 0));
  UNIT("ug/kg/min", 1e-3 * 60, dims(1, -1, 0, -1, 0));
  UNIT("mg.kg-1.h-1", 1, dims(1, -1, 0, -1, 0));
  /* a numerator mass stays drug mass, however it is written */
  UNIT("kg", 1e6, dims(1, 0, 0, 0, 0));
  UNIT("kg*h", 1e6, dims(1, 0, 0, 1, 0));
}

static void test_compound_units(void) {
  ks_dims C = dims(1, 0, -1, 0, 0), AUC = dims(1, 0, -1, 1, 0);
  ks_dims K = dims(0, 0, 0, -1, 0), NONE = dims(0, 0, 0, 0, 0);
  UNIT("", 1, NONE);
  UNIT("   ", 1, NONE);
  UNIT("1", 1, NONE);
  UNIT("%", 0.01, NONE);
  UNIT(" % ", 0.01, NONE);
  UNIT("mg/L", 1, C);
  UNIT("ng/mL", 1e-3, C);
  UNIT("ug/mL", 1, C);
  UNIT("mg/dL", 10, C);
  UNIT("ng*h/mL", 1e-3, AUC);
  UNIT("ng\xC2\xB7h/mL", 1e-3, AUC); /* UTF-8 middle dot */
  UNIT("ng.h/mL", 1e-3, AUC);
  UNIT("mg*h/L", 1, AUC);
  UNIT("mg*min/L", 1.0 / 60, AUC);
  UNIT("1/h", 1, K);
  UNIT("1/min", 60, K);
  UNIT("1 / h", 1, K);
  UNIT("h^-1", 1, K);
  UNIT("h-1", 1, K);
  UNIT("min^-1", 60, K);
  UNIT("L/h", 1, dims(0, 0, 1, -1, 0));
  UNIT("mL/min", 0.06, dims(0, 0, 1, -1, 0));
  UNIT("L / h", 1, dims(0, 0, 1, -1, 0));
  UNIT("mg/h", 1, dims(1, 0, 0, -1, 0));
  UNIT("ug/min", 0.06, dims(1, 0, 0, -1, 0));
  UNIT("g/mol", 1, dims(1, 0, 0, 0, -1));
  UNIT("mg/mmol", 1, dims(1, 0, 0, 0, -1));
  UNIT("umol/L", 1e-3, dims(0, 0, -1, 0, 1));
  UNIT("\xC2\xB5mol/L", 1e-3, dims(0, 0, -1, 0, 1));
  UNIT("nmol/mL", 1e-3, dims(0, 0, -1, 0, 1));
  UNIT("mL2", 1e-6, dims(0, 0, 2, 0, 0));
  UNIT("L^2", 1, dims(0, 0, 2, 0, 0));
  UNIT("h^0", 1, NONE);
  UNIT("L/L", 1, NONE);
  UNIT("mL/L", 1e-3, NONE);
  UNIT("1/h^2", 1, dims(0, 0, 0, -2, 0));
  UNIT("h^9", 1, dims(0, 0, 0, 9, 0));
  UNIT("h^-9", 1, dims(0, 0, 0, -9, 0));
  UNIT("s^2", 1.0 / (3600.0 * 3600.0), dims(0, 0, 0, 2, 0));
}

static void test_quantities(void) {
  ks_dims T = dims(0, 0, 0, 1, 0), M = dims(1, 0, 0, 0, 0);
  ks_dims NONE = dims(0, 0, 0, 0, 0);
  QTY("0.5 mg/kg", 0.5, dims(1, -1, 0, 0, 0));
  QTY("40 min", 40.0 / 60.0, T);
  QTY(" 40 min ", 40.0 / 60.0, T);
  QTY("\t40 min\n", 40.0 / 60.0, T);
  QTY("40min", 40.0 / 60.0, T);
  QTY("3.5 d", 84, T);
  QTY("1 wk", 168, T);
  QTY("90 s", 0.025, T);
  QTY("1e-6", 1e-6, NONE);
  QTY("-2.5", -2.5, NONE);
  QTY(".5", 0.5, NONE);
  QTY("5.", 5, NONE);
  QTY("+3", 3, NONE);
  QTY("1E3 ng", 1e-3, M);
  QTY("2.5e+2 ug", 0.25, M);
  QTY("25 %", 0.25, NONE);
  QTY("25%", 0.25, NONE);
  QTY("0 mg", 0, M);
  QTY("-0", 0, NONE);
  QTY("0e-400", 0, NONE); /* a literal zero is not an underflow */
  QTY("1e5mg", 1e5, M);
  QTY("2 1/h", 2, dims(0, 0, 0, -1, 0));
  QTY("1.2 L/h", 1.2, dims(0, 0, 1, -1, 0));
  QTY("100 ng/mL", 0.1, dims(1, 0, -1, 0, 0));
  QTY("237.73 g/mol", 237.73, dims(1, 0, 0, 0, -1));
  QTY("70 kg", 7e7, M);
  QTY("1e-300", 1e-300, NONE);
  QTY("1.7976931348623157e308", 1.7976931348623157e308, NONE);
}

/* 0.5 mg/kg for a 70 kg patient is 35 mg. */
static void test_weight_based_dose(void) {
  ks_error err;
  ks_error_clear(&err);
  ks_quantity dose, weight;
  KS_CHECK(ks_quantity_parse_as("0.5 mg/kg", &LOC, KS_DIM_MASS, true, "35 mg",
                                &dose, &err) == KS_OK);
  KS_CHECK(ks_quantity_parse_as("70 kg", &LOC, KS_DIM_MASS, false, "70 kg",
                                &weight, &err) == KS_OK);
  KS_CHECK(dose.dims.b == -1);
  double weight_kg = ks_mass_to_body_kg(weight.value);
  KS_CHECK_REL(weight_kg, 70, REL);
  double dose_mg = dose.value * weight_kg;
  KS_CHECK_REL(dose_mg, 35, REL);
  KS_CHECK(ks_dims_equal(ks_dims_without_body(dose.dims), KS_DIM_MASS));
  /* an infusion in ug/kg/min: 10 ug/kg/min x 80 kg = 0.8 mg/min = 48 mg/h */
  ks_quantity rate;
  KS_CHECK(ks_quantity_parse_as("10 ug/kg/min", &LOC, KS_DIM_MASS_RATE, true,
                                "1 mg/h", &rate, &err) == KS_OK);
  KS_CHECK_REL(rate.value * 80, 48, REL);
  KS_CHECK(err.status == KS_OK);
}

/* 1 umol/L of ketamine (237.73 g/mol) is 0.23773 mg/L = 237.73 ng/mL. */
static void test_molar_conversion(void) {
  ks_error err;
  ks_error_clear(&err);
  ks_quantity c, mw;
  KS_CHECK(ks_quantity_parse("1 \xC2\xB5mol/L", &LOC, &c, &err) == KS_OK);
  KS_CHECK(ks_quantity_parse_as("237.73 g/mol", &LOC, KS_DIM_MOLAR_MASS, false,
                                "237.73 g/mol", &mw, &err) == KS_OK);
  ks_dims d = ks_dims_mul(c.dims, mw.dims);
  KS_CHECK(ks_dims_equal(d, KS_DIM_CONC));
  double conc_mg_per_l = c.value * mw.value;
  KS_CHECK_REL(conc_mg_per_l, 0.23773, REL);
  double ng_per_ml = 0;
  ks_dims ngml;
  KS_CHECK(ks_unit_parse("ng/mL", &LOC, &ng_per_ml, &ngml, &err) == KS_OK);
  KS_CHECK_REL(conc_mg_per_l / ng_per_ml, 237.73, REL);
  KS_CHECK(err.status == KS_OK);
}

static void test_number_errors(void) {
  QERR("1e999", 10, "number out of range: '1e999'");
  QERR("-1e999 mg", 10, "number out of range: '-1e999'");
  QERR("  1e999", 12, "number out of range: '1e999'");
  QERR("1e-400", 10, "number out of range: '1e-400'");
  QERR("1e-310", 10, "number out of range: '1e-310'"); /* subnormal */
  QERR("2e308", 10, "number out of range: '2e308'");
  QERR("nan", 10, "'nan' is not a number");
  QERR("NaN mg", 10, "'NaN' is not a number");
  QERR("inf", 10, "'inf' is not a number");
  QERR("-inf", 10, "'-inf' is not a number");
  QERR(".inf", 10, "'.inf' is not a number");
  QERR("infinity", 10, "'infinity' is not a number");
  QERR("0x10", 10, "'0x10' is not a number (hexadecimal is not allowed)");
  QERR("-0X1p3", 10, "'-0X1p3' is not a number (hexadecimal is not allowed)");
  QERR("", 10, "empty value: expected a number");
  QERR("   ", 13, "empty value: expected a number");
  QERR("abc", 10, "'abc' is not a number");
  QERR(" abc def", 11, "'abc' is not a number");
  QERR("-", 10, "'-' is not a number");
  QERR(".", 10, "'.' is not a number");
  QERR("e5", 10, "'e5' is not a number");
  QERR("mg", 10, "missing number before unit 'mg'");
  QERR(" mg/kg", 11, "missing number before unit 'mg/kg'");
  QERR("%", 10, "missing number before unit '%'");
  QERR("1,000 mg", 10,
       "'1,000' is not a number (no digit separators; the decimal point is "
       "'.')");
  QERR("1_000", 10,
       "'1_000' is not a number (no digit separators; the decimal point is "
       "'.')");
  QERR("1.2.3", 10, "'1.2.3' is not a number");
  QERR("1e308 kg", 10, "value out of range once converted to mg: '1e308 kg'");
  QERR("1e-305 ng", 10, "value out of range once converted to mg: '1e-305 ng'");
}

static void test_unit_errors(void) {
  QERR("5 mgg", 12, "unknown unit 'mgg' (did you mean 'mg'?)");
  QERR("5mgg", 11, "unknown unit 'mgg' (did you mean 'mg'?)");
  QERR("5 xyz", 12, "unknown unit 'xyz'");
  QERR("5 x", 12, "unknown unit 'x'");
  QERR("5 MG", 12, "unknown unit 'MG' (did you mean 'mg'?)");
  QERR("5 Kg", 12, "unknown unit 'Kg' (did you mean 'kg'?)");
  QERR("5 ML", 12, "unknown unit 'ML' (did you mean 'mL'?)");
  QERR("5 hrs", 12, "unknown unit 'hrs' (did you mean 'hr'?)");
  QERR("5 mins", 12, "unknown unit 'mins' (did you mean 'min'?)");
  QERR("5 mg/kgg", 15, "unknown unit 'kgg' (did you mean 'kg'?)");
  QERR("2eggs", 11, "unknown unit 'eggs'");
  /* columns count characters, not bytes: the middle dot and the micro sign
   * are two bytes each */
  QERR("5 ng\xC2\xB7h/mLx", 17, "unknown unit 'mLx' (did you mean 'mL'?)");
  QERR("5 \xC2\xB5gg", 12,
       "unknown unit '\xC2\xB5gg' (did you mean '\xC2\xB5g'?)");
  QERR("5 \xC2\xB5g/kgx", 15, "unknown unit 'kgx' (did you mean 'kg'?)");
  QERR("5 mg/", 15, "incomplete unit 'mg/'");
  QERR("5 mg /  ", 16, "incomplete unit 'mg /'");
  QERR("5 mg kg", 15, "missing '*' or '/' between units in 'mg kg'");
  QERR("5 h^", 13, "missing exponent after '^' in unit 'h^'");
  QERR("5 h^-", 13, "missing exponent after '^' in unit 'h^-'");
  QERR("5 h^10", 14, "exponent out of range (-9..9) in unit 'h^10'");
  QERR("5 h-10", 14, "exponent out of range (-9..9) in unit 'h-10'");
  QERR("5 h^9*h", 12, "unit 'h^9*h' has an exponent outside -9..9");
  QERR("5 %/h", 12, "'%' must stand alone, not in unit '%/h'");
  QERR("5 mg%", 14, "'%' must stand alone, not in unit 'mg%'");
  QERR("5 mg(kg", 14, "unexpected character '(' in unit 'mg(kg'");
  QERR("5 mg/2h", 15,
       "unexpected number in unit 'mg/2h' (only '1/' may start a unit)");
  QERR("5 1h", 12,
       "unexpected number in unit '1h' (only '1/' may start a unit)");
  QERR("5 /h", 12, "unexpected character '/' in unit '/h'");
  QERR("5 h-", 13, "unexpected character '-' in unit 'h-'");
  QERR("5 mg\xC2\xB7\xC2\xB7h", 15,
       "unexpected character '\xC2\xB7' in unit 'mg\xC2\xB7\xC2\xB7h'");
  QERR("5 mg\x01", 14, "unexpected character byte 0x01 in unit 'mg\x01'");
}

static void test_error_record(void) {
  ks_error err;
  double f;
  ks_dims d;
  /* unknown position stays unknown */
  ks_srcloc noloc = {"g.yaml", 7, 0};
  ks_error_clear(&err);
  KS_CHECK(ks_unit_parse("mg/kgg", &noloc, &f, &d, &err) == KS_ERR_UNIT);
  KS_CHECK(err.line == 7 && err.column == 0);
  KS_CHECK_STR(err.file, "g.yaml");
  /* no location at all */
  ks_error_clear(&err);
  KS_CHECK(ks_unit_parse("mgg", NULL, &f, &d, &err) == KS_ERR_UNIT);
  KS_CHECK(err.line == 0 && err.column == 0 && err.file[0] == '\0');
  KS_CHECK_STR(err.message, "unknown unit 'mgg' (did you mean 'mg'?)");
  /* ks_unit_parse columns are relative to its own text */
  ks_error_clear(&err);
  KS_CHECK(ks_unit_parse(" mg/kgg", &LOC, &f, &d, &err) == KS_ERR_UNIT);
  KS_CHECK(err.column == 14);
  /* the first error wins */
  KS_CHECK(ks_unit_parse("hrs", &LOC, &f, &d, &err) == KS_ERR_UNIT);
  KS_CHECK_STR(err.message, "unknown unit 'kgg' (did you mean 'kg'?)");
  /* a NULL record still gets the status */
  KS_CHECK(ks_unit_parse("hrs", &LOC, &f, &d, NULL) == KS_ERR_UNIT);
  ks_quantity q;
  KS_CHECK(ks_quantity_parse("abc", &LOC, &q, NULL) == KS_ERR_UNIT);
  /* NULL arguments */
  ks_error_clear(&err);
  KS_CHECK(ks_unit_parse(NULL, &LOC, &f, &d, &err) == KS_ERR_ARG);
  KS_CHECK(err.status == KS_ERR_ARG);
  KS_CHECK(ks_quantity_parse("1 h", &LOC, NULL, NULL) == KS_ERR_ARG);
  KS_CHECK(ks_number_parse(NULL, &LOC, &f, NULL) == KS_ERR_ARG);
  KS_CHECK(ks_quantity_parse_as("1 h", &LOC, KS_DIM_TIME, false, NULL, NULL,
                                NULL) == KS_ERR_ARG);
  /* long input is quoted shortened, with "..." */
  char longsym[200];
  memset(longsym, 'q', sizeof longsym - 1);
  longsym[sizeof longsym - 1] = '\0';
  ks_error_clear(&err);
  KS_CHECK(ks_unit_parse(longsym, &LOC, &f, &d, &err) == KS_ERR_UNIT);
  KS_CHECK(strstr(err.message, "...'") != NULL);
  KS_CHECK(strlen(err.message) < 100);
  /* the formatted line a user sees */
  char line[256];
  ks_error_clear(&err);
  KS_CHECK(ks_quantity_parse("5 mgg", &LOC, &q, &err) == KS_ERR_UNIT);
  KS_CHECK_STR(ks_error_format(&err, line, sizeof line),
               "f.yaml:3:12: error: unknown unit 'mgg' (did you mean 'mg'?)");
}

static void test_number_parse(void) {
  ks_error err;
  ks_error_clear(&err);
  double x = 0;
  KS_CHECK(ks_number_parse("42", &LOC, &x, &err) == KS_OK && x == 42);
  KS_CHECK(ks_number_parse(" -1.5e3 ", &LOC, &x, &err) == KS_OK && x == -1500);
  KS_CHECK(ks_number_parse(".25", &LOC, &x, &err) == KS_OK && x == 0.25);
  KS_CHECK(ks_number_parse("1e-6", &LOC, &x, &err) == KS_OK && x == 1e-6);
  KS_CHECK(err.status == KS_OK);
  NERR("5 mg", 12, "expected a plain number, got '5 mg'");
  NERR("5%", 11, "expected a plain number, got '5%'");
  NERR(" 5 1", 13, "expected a plain number, got '5 1'");
  NERR("1e999", 10, "number out of range: '1e999'");
  NERR("nan", 10, "'nan' is not a number");
  NERR("0x10", 10, "'0x10' is not a number (hexadecimal is not allowed)");
  NERR("", 10, "empty value: expected a number");
  NERR("mg", 10, "missing number before unit 'mg'");
}

static void test_parse_as(void) {
  ks_error err;
  ks_error_clear(&err);
  ks_quantity q;
  KS_CHECK(ks_quantity_parse_as("40 min", &LOC, KS_DIM_TIME, false, "40 min",
                                &q, &err) == KS_OK);
  KS_CHECK_REL(q.value, 40.0 / 60.0, REL);
  KS_CHECK(ks_quantity_parse_as("35 mg", &LOC, KS_DIM_MASS, true, "35 mg", &q,
                                &err) == KS_OK);
  KS_CHECK(q.value == 35 && ks_dims_equal(q.dims, KS_DIM_MASS));
  KS_CHECK(ks_quantity_parse_as("0.06 L/h/kg", &LOC, KS_DIM_FLOW, true,
                                "1.2 L/h", &q, &err) == KS_OK);
  KS_CHECK(ks_dims_equal(q.dims, dims(0, -1, 1, -1, 0)));
  KS_CHECK(ks_quantity_parse_as("0.3", &LOC, KS_DIM_NONE, false, "0.3", &q,
                                &err) == KS_OK);
  KS_CHECK(ks_quantity_parse_as("30 %", &LOC, KS_DIM_NONE, false, "0.3", &q,
                                &err) == KS_OK);
  KS_CHECK_REL(q.value, 0.3, REL);
  KS_CHECK(err.status == KS_OK);

  expect_as_error(__LINE__, "5 mg", KS_DIM_TIME, false, "40 min", 12,
                  "expected a time (e.g. '40 min'), got '5 mg' (mass)");
  expect_as_error(__LINE__, "0.5 mg/kg", KS_DIM_MASS, false, "35 mg", 14,
                  "expected a mass (e.g. '35 mg'), got '0.5 mg/kg' "
                  "(mass per body mass)");
  expect_as_error(__LINE__, "5 h", KS_DIM_MASS, true, "0.5 mg/kg", 12,
                  "expected a mass or a mass per body mass (e.g. '0.5 "
                  "mg/kg'), got '5 h' (time)");
  expect_as_error(__LINE__, "3 mg", KS_DIM_FLOW, true, "1.2 L/h", 12,
                  "expected a flow (volume/time) or a quantity in L/kg/h "
                  "(e.g. '1.2 L/h'), got '3 mg' (mass)");
  expect_as_error(__LINE__, " 5", KS_DIM_TIME, false, "40 min", 11,
                  "expected a time (e.g. '40 min'), got '5' (dimensionless)");
  expect_as_error(__LINE__, "1 h", KS_DIM_CONC, false, NULL, 12,
                  "expected a concentration, got '1 h' (time)");
  expect_as_error(__LINE__, "3 h", KS_DIM_NONE, false, "0.3", 12,
                  "expected a dimensionless number (e.g. '0.3'), got '3 h' "
                  "(time)");
  expect_as_error(__LINE__, "2 L", KS_DIM_RATE_CONST, false, "0.1 1/h", 12,
                  "expected a rate constant (1/time) (e.g. '0.1 1/h'), got "
                  "'2 L' (volume)");
  expect_as_error(__LINE__, "2 mg/kg/h", KS_DIM_VOLUME, false, "5 L", 12,
                  "expected a volume (e.g. '5 L'), got '2 mg/kg/h' "
                  "(mg/kg/h)");
  expect_as_error(__LINE__, "2 h", KS_DIM_MASS_RATE, false, "1 mg/h", 12,
                  "expected a quantity in mg/h (e.g. '1 mg/h'), got '2 h' "
                  "(time)");
  /* a parse error is reported as such, not as a mismatch */
  expect_as_error(__LINE__, "5 mgg", KS_DIM_MASS, false, "5 mg", 12,
                  "unknown unit 'mgg' (did you mean 'mg'?)");
}

static void test_dims_text(void) {
  char buf[64];
  KS_CHECK_STR(ks_dims_unit(KS_DIM_TIME, buf, sizeof buf), "h");
  KS_CHECK_STR(ks_dims_unit(KS_DIM_MASS, buf, sizeof buf), "mg");
  KS_CHECK_STR(ks_dims_unit(KS_DIM_VOLUME, buf, sizeof buf), "L");
  KS_CHECK_STR(ks_dims_unit(KS_DIM_FLOW, buf, sizeof buf), "L/h");
  KS_CHECK_STR(ks_dims_unit(KS_DIM_RATE_CONST, buf, sizeof buf), "1/h");
  KS_CHECK_STR(ks_dims_unit(KS_DIM_CONC, buf, sizeof buf), "mg/L");
  KS_CHECK_STR(ks_dims_unit(KS_DIM_MASS_RATE, buf, sizeof buf), "mg/h");
  KS_CHECK_STR(ks_dims_unit(KS_DIM_MOLAR_MASS, buf, sizeof buf), "mg/mmol");
  KS_CHECK_STR(ks_dims_unit(KS_DIM_PER_BODY_MASS, buf, sizeof buf), "1/kg");
  KS_CHECK_STR(ks_dims_unit(KS_DIM_NONE, buf, sizeof buf), "1");
  KS_CHECK_STR(ks_dims_unit(dims(1, -1, 0, 0, 0), buf, sizeof buf), "mg/kg");
  KS_CHECK_STR(ks_dims_unit(dims(1, -1, 0, -1, 0), buf, sizeof buf), "mg/kg/h");
  KS_CHECK_STR(ks_dims_unit(dims(0, -1, 1, -1, 0), buf, sizeof buf), "L/kg/h");
  KS_CHECK_STR(ks_dims_unit(dims(1, 0, -1, 1, 0), buf, sizeof buf), "mg*h/L");
  KS_CHECK_STR(ks_dims_unit(dims(0, 0, -1, 0, 1), buf, sizeof buf), "mmol/L");
  KS_CHECK_STR(ks_dims_unit(dims(0, 0, 2, -2, 0), buf, sizeof buf), "L^2/h^2");
  KS_CHECK_STR(ks_dims_unit(dims(0, 1, 0, 0, 0), buf, sizeof buf), "kg");
  /* truncation keeps the buffer terminated; unusable buffers give "" */
  char small[4];
  KS_CHECK_STR(ks_dims_unit(KS_DIM_MOLAR_MASS, small, sizeof small), "mg/");
  KS_CHECK_STR(ks_dims_unit(KS_DIM_CONC, NULL, 0), "");
  KS_CHECK_STR(ks_dims_describe(KS_DIM_CONC, buf, 0), "");

  KS_CHECK_STR(ks_dims_describe(KS_DIM_TIME, buf, sizeof buf), "time");
  KS_CHECK_STR(ks_dims_describe(KS_DIM_MASS, buf, sizeof buf), "mass");
  KS_CHECK_STR(ks_dims_describe(KS_DIM_VOLUME, buf, sizeof buf), "volume");
  KS_CHECK_STR(ks_dims_describe(KS_DIM_FLOW, buf, sizeof buf),
               "flow (volume/time)");
  KS_CHECK_STR(ks_dims_describe(KS_DIM_RATE_CONST, buf, sizeof buf),
               "rate constant (1/time)");
  KS_CHECK_STR(ks_dims_describe(KS_DIM_CONC, buf, sizeof buf), "concentration");
  KS_CHECK_STR(ks_dims_describe(dims(1, -1, 0, 0, 0), buf, sizeof buf),
               "mass per body mass");
  KS_CHECK_STR(ks_dims_describe(KS_DIM_NONE, buf, sizeof buf), "dimensionless");
  KS_CHECK_STR(ks_dims_describe(dims(1, -1, 0, -1, 0), buf, sizeof buf),
               "mg/kg/h");
  KS_CHECK_STR(ks_dims_describe(KS_DIM_MOLAR_MASS, buf, sizeof buf), "mg/mmol");
}

/* What ks_dims_unit writes must read back as the same unit with factor 1
 * (the files we write must be readable by our own parser). */
static void test_unit_round_trip(void) {
  const ks_dims all[] = {
      KS_DIM_NONE,          KS_DIM_TIME,           KS_DIM_MASS,
      KS_DIM_VOLUME,        KS_DIM_FLOW,           KS_DIM_RATE_CONST,
      KS_DIM_CONC,          KS_DIM_MASS_RATE,      KS_DIM_MOLAR_MASS,
      KS_DIM_PER_BODY_MASS, dims(1, -1, 0, -1, 0), dims(0, -1, 1, -1, 0),
      dims(1, 0, -1, 1, 0), dims(0, 0, 2, -2, 0),  dims(0, 0, -1, 0, 1),
  };
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
    char buf[64];
    ks_dims_unit(all[i], buf, sizeof buf);
    expect_unit(__LINE__, buf, 1, all[i]);
  }
}

static void test_dims_arithmetic(void) {
  ks_dims a = dims(1, -1, 0, -1, 0), b = dims(0, -1, 1, 0, 2);
  KS_CHECK(ks_dims_equal(ks_dims_mul(a, b), dims(1, -2, 1, -1, 2)));
  KS_CHECK(ks_dims_equal(ks_dims_div(a, b), dims(1, 0, -1, -1, -2)));
  KS_CHECK(ks_dims_equal(ks_dims_div(KS_DIM_MASS, KS_DIM_VOLUME), KS_DIM_CONC));
  KS_CHECK(ks_dims_equal(ks_dims_mul(KS_DIM_FLOW, KS_DIM_TIME), KS_DIM_VOLUME));
  KS_CHECK(!ks_dims_equal(KS_DIM_MASS, dims(1, -1, 0, 0, 0)));
  KS_CHECK(ks_dims_equal(ks_dims_without_body(a), KS_DIM_MASS_RATE));
  KS_CHECK(ks_dims_equal(ks_dims_without_body(KS_DIM_CONC), KS_DIM_CONC));
  KS_CHECK(ks_mass_to_body_kg(7e7) == 70);
}

/* Files always use '.', whatever LC_NUMERIC the host program set. Only runs
 * where a decimal-comma locale is installed. */
static void test_decimal_comma_locale(void) {
  const char *names[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8",
                         "fr_FR.utf8"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    if (!setlocale(LC_NUMERIC, names[i]))
      continue;
    ks_error err;
    ks_error_clear(&err);
    ks_quantity q;
    KS_CHECK(ks_quantity_parse("1.5 h", &LOC, &q, &err) == KS_OK);
    KS_CHECK(q.value == 1.5);
    setlocale(LC_NUMERIC, "C");
    return;
  }
  fprintf(stderr, "note: no decimal-comma locale installed; skipped\n");
}

int main(void) {
  test_every_symbol();
  test_body_mass();
  test_compound_units();
  test_quantities();
  test_weight_based_dose();
  test_molar_conversion();
  test_number_errors();
  test_unit_errors();
  test_error_record();
  test_number_parse();
  test_parse_as();
  test_dims_text();
  test_unit_round_trip();
  test_dims_arithmetic();
  test_decimal_comma_locale();
  KS_TEST_END();
}
