/* Private parts of the run stage. */
#ifndef KETASIM_RUN_INTERNAL_H
#define KETASIM_RUN_INTERNAL_H

#include "ketasim/run.h"

/* ks_run() for a scenario with a dataset (ks_scenario_data_get() not NULL):
 * one case per ID, predictions at its records (run_data.c). */
ks_status ks__run_data(const ks_scenario *s, const ks_run_options *o,
                       ks_run_result *res, ks_error *err);

#endif
