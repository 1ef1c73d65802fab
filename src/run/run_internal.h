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

/* Creates the output file of the whole run of `s` (every case), with the
 * layout ks_run() gives it, so that a merge of part files writes the same
 * variables with the same attributes. `warnings`: the root attribute as the
 * parts have it (their scenario was loaded from its file, whose name the
 * messages give), or NULL for those of `s`. */
ks_status ks__run_output_create(const ks_scenario *s, const char *path,
                                const char *command_line, const char *warnings,
                                ks_output **out, ks_error *err);

#endif
