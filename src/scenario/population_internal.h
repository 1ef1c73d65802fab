/* Virtual subjects' covariates drawn from declared distributions (the
 * scenario's population.covariates; docs/scenario-format.md). Read once
 * with the scenario; drawn per case from the counter-based generator keyed
 * by (seed, subject), so subject k has the same weight, age and sex in every
 * arm and sweep point, whichever thread computes it. */
#ifndef KETASIM_POPULATION_INTERNAL_H
#define KETASIM_POPULATION_INTERNAL_H

#include <stdint.h>

#include "ketasim/model.h"
#include "yamltree_internal.h"

typedef struct ks__popcov ks__popcov;

/* Reads `covariates` (a mapping from `weight` or a model covariate's
 * subject key to its distribution) and `records` (a CSV file of covariate
 * records, resampled whole: {file, columns: {COLUMN: "key [unit]"},
 * sample}); either may be NULL. The file is read here, relative to the
 * scenario's directory; its errors name FILE:LINE:COLUMN. *out is NULL
 * when nothing is drawn. */
ks_status ks__popcov_read(const ks_ydoc *doc, const ks_ynode *covariates,
                          const ks_ynode *records, const ks_model *m,
                          ks__popcov **out, ks_error *err);
/* Number of records read from population.records (0: none). */
size_t ks__popcov_records(const ks__popcov *pc);
void ks__popcov_free(ks__popcov **pc);

/* Number of drawn characteristics, and for entry j: its subject key
 * ("weight", "age"), the model covariate it sets (-1 for weight), its unit
 * ("kg", the covariate's unit) and its node in the scenario. */
size_t ks__popcov_n(const ks__popcov *pc);
const char *ks__popcov_key(const ks__popcov *pc, size_t j);
int ks__popcov_covariate(const ks__popcov *pc, size_t j);
const char *ks__popcov_unit(const ks__popcov *pc, size_t j);
const ks_ynode *ks__popcov_node(const ks__popcov *pc, size_t j);

/* Draws subject `subject`'s characteristics into *weight_kg and
 * covariates[] (the entries not drawn are left as they are) and, when
 * `drawn` is not NULL, each entry's value into drawn[j]. Pure function of
 * (pc, seed, subject). */
void ks__popcov_draw(const ks__popcov *pc, uint64_t seed, uint64_t subject,
                     double *weight_kg, double *covariates, double *drawn);

#endif
