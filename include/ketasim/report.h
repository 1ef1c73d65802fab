/* ketasim — a teaching report: one self-contained HTML page per output file.
 *
 * ks_report_write() reads a ketasim HDF5 output (see ketasim/output.h) and
 * writes a single HTML file that needs nothing else: no scripts, no fonts, no
 * images or style sheets from elsewhere (a Content-Security-Policy in the
 * page forbids them), so it can be projected from a USB stick or mailed. It
 * holds:
 *
 *   - for each analyte (ketamine, norketamine), the concentration-time
 *     curves on a linear and on a logarithmic concentration axis, drawn as
 *     inline SVG: one line per case while every arm has at most 12 cases and
 *     there are at most 28 cases (28 distinct colour and dash combinations
 *     from the Okabe-Ito palette, readable by colour-blind viewers and in
 *     grey print; when the cases are every combination of a few subjects and
 *     a few routes, colour follows the subject and dashes the route);
 *     otherwise the median and a band from the 5th to the 95th percentile at
 *     each output time (at most 1500 times, evenly strided) per arm and sweep
 *     point when there are at most 8 of those, else per arm (case_label)
 *     when at most 8 arms, else over all cases. Failed cases are left out
 *     and counted;
 *   - for each computed output of the model (docs/model-format.md,
 *     outputs; e.g. a drug effect), first, because a scenario that uses them
 *     asks about them: its description, its curves over time on a linear
 *     axis in the output's unit, drawn as for concentrations (lines, or
 *     median and 5th-95th percentile band per group, from a histogram of
 *     1024 linear bins between the output's lowest and highest value), its
 *     `output_thresholds` as labelled dashed lines (a threshold beyond four
 *     times the largest value is named under the chart instead of
 *     squeezing the curves), and beside the chart a table per case or
 *     group: peak, time of peak, AUC over the window and, per threshold,
 *     the time from the end of the last dose until the output falls and
 *     stays below it (a case still above at the end counts as later than every
 * time in the percentiles);
 *   - the reference bands of the scenario's `report` section (below), shaded
 *     on that analyte's charts and listed with their sources;
 *   - a table with one row per case (or per group of a band, as median and
 *     5th-95th percentile): Cmax, Tmax and AUC of each analyte, bioavailability
 *     relative to the IV arm where there is one, the AUC ratio of the second
 *     analyte to the first (norketamine/ketamine), the trough for repeated
 *     doses, and the time after the end of the last dose (infusion end, else
 *     the dose time) until the first analyte falls and stays below a level;
 *   - the scenario text, the model, and the versions and command that made
 *     the data, so a printed page says where it came from.
 *
 * Percentile bands come from a histogram of 1024 logarithmic bins spanning
 * four decades below the largest Cmax, per group and output time: every
 * case counts, memory stays bounded (about 6 MB: one group at a time), and
 * a percentile is placed within its bin by interpolation, closer than 1 % to
 * the exact value. Values below the histogram's floor count as 0.
 *
 * Bioavailability F of a case is its dose-normalised AUC of the first
 * analyte over the output window divided by that of the reference: the case
 * of the first all-IV arm with the same sweep point, virtual subject, weight,
 * covariates and modifiers (so an oral dose with rifampicin is compared with
 * IV with rifampicin). Doses are those of the scenario stored in the file,
 * which is loaded again, in memory, with the model text stored beside it:
 * nothing is read from disk but the output file (the scenario's `model:`
 * value is only shown). F is left out, with a note, when that cannot be
 * done. The AUC is truncated at the end of the output window: choose a
 * window long enough for the drug to be gone.
 *
 * Hostile input: the output file is read as described in export.h (sizes
 * checked against the file, no external links or external storage).
 * Concentrations beyond 1e300 ng/mL (or infinite) are drawn against an axis
 * that stops there; output times that are not finite and in order are
 * KS_ERR_INPUT. Writing the report over the input file is KS_ERR_ARG.
 *
 * The scenario's `report` section (reference bands, the computed outputs to
 * show, the "time below" level, a note) is read and checked by the scenario
 * module (ks_scenario_report, ketasim/scenario.h); the report takes it from
 * the scenario stored in the file. When that scenario cannot be loaded again
 * (it names a dataset that is not here, say), the section alone is read
 * from its text, with band analytes checked against the file's. A band on
 * an analyte the file does not hold is left out; an output name the file
 * does not hold is KS_ERR_INPUT at its place in the stored scenario text.
 *
 * The time until below is the file's exact `time_to_below` when the level is
 * one of its `output.thresholds`; otherwise it is read off the output grid
 * (log-linear interpolation between the last point above the level and the
 * next), measured from the end of the last dose of the scenario.
 *
 * Not thread-safe (HDF5 is not, in Debian's build).
 */
#ifndef KETASIM_REPORT_H
#define KETASIM_REPORT_H

#include <signal.h>
#include <stddef.h>

#include "ketasim/error.h"

#include "ketasim/api.h"

#ifdef __cplusplus
extern "C" {
#endif
KS_API_BEGIN

typedef struct ks_report_options {
  /* Level for "time until the first analyte stays below", ng/mL. NaN: the
   * scenario's report.below, else the file's first threshold, else
   * KS_REPORT_DEFAULT_BELOW_NG_PER_ML [NaN]. */
  double below_ng_per_ml;
  volatile const sig_atomic_t *stop; /* if set and non-zero: stop, remove the
                                        temporary file, KS_ERR_INTERRUPTED */
} ks_report_options;

#define KS_REPORT_DEFAULT_BELOW_NG_PER_ML 50.0

ks_report_options ks_report_options_default(void);

/* Writes the report for `h5_path` to `html_path` (under a temporary name,
 * renamed when complete). `opts` may be NULL (defaults).
 *
 * Errors: KS_ERR_IO when the input cannot be read, is not HDF5 or is
 * truncated, or the HTML cannot be written (the message names the file);
 * KS_ERR_INPUT when the input is HDF5 but not a ketasim output, or when the
 * scenario's `report` section is invalid (file:line:column, the file being
 * "<h5_path>:scenario_text"); KS_ERR_UNIT for a bad unit there; KS_ERR_HDF5
 * when a read fails half-way; KS_ERR_ARG for NULL or empty paths or a
 * below_ng_per_ml that is not positive, or an html_path that is the input
 * file; KS_ERR_NOMEM; KS_ERR_INTERRUPTED. */
ks_status ks_report_write(const char *h5_path, const char *html_path,
                          const ks_report_options *opts, ks_error *err);

KS_API_END
#ifdef __cplusplus
}
#endif
#endif
