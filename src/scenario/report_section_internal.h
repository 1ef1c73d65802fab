/* The scenario's `report` section (ketasim/scenario.h,
 * ks_scenario_report): read with the scenario, and on its own from a
 * scenario text that cannot be loaded whole again (a report of an output
 * file whose stored scenario names a dataset on another machine, say). */
#ifndef KETASIM_REPORT_SECTION_INTERNAL_H
#define KETASIM_REPORT_SECTION_INTERNAL_H

#include <stddef.h>

#include "ketasim/api.h"
#include "ketasim/model.h"
#include "ketasim/scenario.h"

#include "yamltree_internal.h"

/* Reads the `report` section of a scenario document into *out (strings
 * point into doc); band analytes and output names are checked against the
 * model's. A document without the section gives out->given == 0. */
ks_status ks__scenario_report_read(const ks_ydoc *doc, const ks_model *m,
                                   ks_scenario_report *out, ks_error *err);

/* Exported for libketasim-post (see ketasim/api.h). */
KS_POST_API_BEGIN

/* The section alone, from `len` bytes of scenario text named `file` in
 * messages: parses the text into *doc (the caller frees it with
 * ks__ydoc_free, also on failure) and reads the section as
 * ks__scenario_report_read would, with band analytes checked against
 * analytes[0..n_analytes) (not checked when n_analytes is 0) and output
 * names not checked. *model_ref is the `model:` value, or NULL. */
ks_status ks__scenario_report_text(const char *file, const char *text,
                                   size_t len, const char *const *analytes,
                                   size_t n_analytes, ks_ydoc **doc,
                                   ks_scenario_report *out,
                                   const char **model_ref, ks_error *err);

KS_POST_API_END
#endif
