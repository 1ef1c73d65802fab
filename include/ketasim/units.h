/* ketasim — quantities with units.
 *
 * Files give every quantity as text with a unit ("0.5 mg/kg", "40 min",
 * "237.73 g/mol"). One table-driven parser converts it once, on load, to the
 * internal system used everywhere else:
 *
 *   drug mass  mg        body mass  kg       volume  L
 *   time       h         substance  mmol     (so g/mol == mg/mmol)
 *
 * A dimension is a vector of integer exponents over five base dimensions:
 * drug mass (m), body mass (b), volume (v), time (t) and amount of substance
 * (n). Body mass is a separate base so that a per-body-weight quantity is never
 * confused with a pure number: a mass unit written in a denominator ("mg/kg",
 * "L/kg", "mg/kg/h") counts as body mass, a mass unit in a numerator counts as
 * drug mass. A field that expects a body weight ("weight: 70 kg") asks for
 * KS_DIM_MASS and the caller reads the value as kg of body mass, converted
 * with ks_mass_to_body_kg().
 *
 * Grammar of a unit string (whitespace around operators is allowed):
 *   unit    := "" | "1" | "%" | product
 *   product := power (("/" | "*" | "." | "·") power)*     left to right: L/h/kg = L h^-1 kg^-1
 *   power   := symbol ("^" ["-"] digits | "-" digits | digits)?   h^-1, h-1, m2 (exponents -9..9)
 *   symbol  := one of the table below, case-sensitive
 * A leading "1/" is allowed ("1/h"). "%" stands alone and means 0.01.
 *
 * Unit table (symbol: factor to internal unit, dimension):
 *   time      s sec 1/3600 h; min 1/60 h; h hr hour hours 1 h; d day days 24 h;
 *             wk week weeks 168 h; y yr year years 8766 h (365.25 d)
 *   mass      ng 1e-6 mg; ug µg mcg 1e-3 mg; mg 1; g 1e3 mg; kg 1e6 mg
 *             (in a denominator: kg 1, g 1e-3, mg 1e-6 ... kg of body mass)
 *   volume    uL µL 1e-6 L; mL ml 1e-3 L; dL dl 0.1 L; L l 1 L
 *   substance nmol 1e-6 mmol; umol µmol 1e-3 mmol; mmol 1; mol 1e3 mmol
 *
 * Numbers: decimal with optional sign, fraction and exponent ("1e-6", "-2.5",
 * ".5"); no hex, no "nan"/"inf", no thousands separators; a number that
 * overflows a double or is not finite is an error ("out of range").
 *
 * Thread-safety: all functions are pure and re-entrant.
 */
#ifndef KETASIM_UNITS_H
#define KETASIM_UNITS_H

#include <stdbool.h>
#include <stddef.h>

#include "ketasim/error.h"

#include "ketasim/api.h"

#ifdef __cplusplus
extern "C" {
#endif
KS_API_BEGIN

typedef struct ks_dims {
  signed char m; /* drug mass */
  signed char b; /* body mass (mass in a denominator) */
  signed char v; /* volume */
  signed char t; /* time */
  signed char n; /* amount of substance */
} ks_dims;

/* Dimensions used by the schemas. */
/* Concentrations are mg/L inside the engine and ng/mL in every output. */
#define KS_NG_PER_ML_PER_MG_PER_L 1e3

#define KS_DIM_NONE ((ks_dims){0, 0, 0, 0, 0})
#define KS_DIM_TIME ((ks_dims){0, 0, 0, 1, 0})
#define KS_DIM_MASS ((ks_dims){1, 0, 0, 0, 0})
#define KS_DIM_VOLUME ((ks_dims){0, 0, 1, 0, 0})
#define KS_DIM_FLOW ((ks_dims){0, 0, 1, -1, 0})          /* L/h */
#define KS_DIM_RATE_CONST ((ks_dims){0, 0, 0, -1, 0})    /* 1/h */
#define KS_DIM_CONC ((ks_dims){1, 0, -1, 0, 0})          /* mg/L */
#define KS_DIM_MASS_RATE ((ks_dims){1, 0, 0, -1, 0})     /* mg/h */
#define KS_DIM_MOLAR_MASS ((ks_dims){1, 0, 0, 0, -1})    /* mg/mmol = g/mol */
#define KS_DIM_PER_BODY_MASS ((ks_dims){0, -1, 0, 0, 0}) /* 1/kg */

/* A quantity in internal units: `value` is in the internal unit of `dims`
 * (e.g. 0.5 mg/kg -> value 0.5, dims {m=1, b=-1}; 40 min -> 0.6667, time). */
typedef struct ks_quantity {
  double value;
  ks_dims dims;
} ks_quantity;

bool ks_dims_equal(ks_dims a, ks_dims b);
ks_dims ks_dims_mul(ks_dims a, ks_dims b);
ks_dims ks_dims_div(ks_dims a, ks_dims b);

/* `d` with its body-mass exponent removed, i.e. the dimension a per-kg
 * quantity has once multiplied by the body weight b^(-d.b). */
ks_dims ks_dims_without_body(ks_dims d);

/* A short English name for error messages: "time", "mass", "volume",
 * "flow (volume/time)", "rate constant (1/time)", "concentration",
 * "mass per body mass", "dimensionless", or, for anything else, the internal
 * unit spelled out ("mg/kg/h"). Writes into buf (>= 64 bytes advised) and
 * returns it. */
const char *ks_dims_describe(ks_dims d, char *buf, size_t size);

/* The internal unit of `d` as text in the form written to output files:
 * "h", "mg", "L", "L/h", "1/h", "mg/L", "mg/kg", "1" (dimensionless). */
const char *ks_dims_unit(ks_dims d, char *buf, size_t size);

/* Parses a unit string alone (see grammar). On success sets *factor (multiply
 * a number in that unit by it to get internal units) and *dims.
 * On failure returns KS_ERR_UNIT and records an error at `loc` shifted by the
 * offending character's offset within `text` (loc may be NULL), with a message
 * such as "unknown unit 'mgg' (did you mean 'mg'?)". */
ks_status ks_unit_parse(const char *text, const ks_srcloc *loc, double *factor,
                        ks_dims *dims, ks_error *err);

/* Parses "<number> [unit]" (e.g. "0.5 mg/kg", "40min", "1e-6", "25 %").
 * Leading and trailing whitespace is ignored. Errors as ks_unit_parse, with
 * messages such as "'abc' is not a number", "number out of range: '1e999'",
 * "missing number before unit 'mg'". */
ks_status ks_quantity_parse(const char *text, const ks_srcloc *loc,
                            ks_quantity *q, ks_error *err);

/* Parses a quantity and checks that its dimension is `want`, or, when
 * `allow_per_body` is true, `want` divided by body mass (e.g. mg/kg where mg
 * is wanted). On a mismatch: KS_ERR_UNIT, "expected a time (e.g. '40 min'),
 * got '5 mg' (mass)". `example` is the example put in that message. */
ks_status ks_quantity_parse_as(const char *text, const ks_srcloc *loc,
                               ks_dims want, bool allow_per_body,
                               const char *example, ks_quantity *q,
                               ks_error *err);

/* Parses a plain number (no unit allowed). Same number rules as above. */
ks_status ks_number_parse(const char *text, const ks_srcloc *loc, double *out,
                          ks_error *err);

/* A drug-mass value in internal mg read as kg of body mass (70 kg -> 70). */
double ks_mass_to_body_kg(double mass_mg);

KS_API_END
#ifdef __cplusplus
}
#endif
#endif
