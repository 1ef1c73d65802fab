/* Private parts of the run stage. */
#ifndef KETASIM_RUN_INTERNAL_H
#define KETASIM_RUN_INTERNAL_H

#include "ketasim/error.h"
#include "ketasim/output.h"
#include "ketasim/run.h"
#include "ketasim/scenario.h"

/* ks_run() for a scenario with a dataset (ks_scenario_data_get() not NULL):
 * one case per ID, predictions at its records (run_data.c). */
ks_status ks__run_data(const ks_scenario *s, const ks_run_options *o,
                       ks_run_result *res, ks_error *err);

/* ks_run_estimate_resources() for a scenario with a dataset: opens and
 * checks the dataset (its size decides the output's). */
ks_status ks__run_data_estimate(const ks_scenario *s, const ks_run_options *o,
                                ks_run_estimate *e, ks_error *err);

/* The layout ks_run() gives the scenario's output for one case (names,
 * units, outputs, parameters, profiles, thresholds, provenance); the names
 * it borrows are owned by *names (free with ks__run_layout_free()). A
 * dataset run sets its own cases, case variables and records on top. */
ks_status ks__run_layout(const ks_scenario *s, const char *command_line,
                         ks_output_layout *l, void **names, ks_error *err);
void ks__run_layout_free(void **names);

/* The last step of ks_run_estimate_resources(): given e's sizes, fills in
 * the free disk space and memory, refuses an output that would overwrite an
 * input, and refuses what does not fit (KS_ERR_LIMIT). */
ks_status ks__run_check_fits(const ks_scenario *s, const ks_run_options *o,
                             ks_run_estimate *e, ks_error *err);

/* Creates the output file of the whole run of `s` (every case), with the
 * layout ks_run() gives it, so that a merge of part files writes the same
 * variables with the same attributes. `warnings`: the root attribute as the
 * parts have it (their scenario was loaded from its file, whose name the
 * messages give), or NULL for those of `s`. */
ks_status ks__run_output_create(const ks_scenario *s, const char *path,
                                const char *command_line, const char *warnings,
                                ks_output **out, ks_error *err);

#endif
