/* ketasim (internal) — a case's regimen expanded into dose events.
 *
 * Each dose of each regimen line is split over its route's targets
 * (fraction, lag time, zero-order input duration). A target with no duration
 * of its own takes the line's (`duration`, 0 = bolus). The result is a list
 * of boluses and a list of zero-order inputs ("infusions"); overlapping
 * infusions add up. The breakpoints are every time at which the input
 * changes: the solver integrates between them and never steps across one.
 *
 * A ks_schedule is a reusable buffer: build it for one case, then the next;
 * it grows as needed and is freed with ks_schedule_free().
 */
#ifndef KETASIM_DOSING_INTERNAL_H
#define KETASIM_DOSING_INTERNAL_H

#include <stddef.h>

#include "ketasim/error.h"
#include "ketasim/model.h"
#include "ketasim/scenario.h"

#include "system_internal.h"

typedef struct ks_bolus {
  double t_h;
  size_t compartment;
  double amount_mg;
} ks_bolus;

typedef struct ks_infusion {
  double start_h, end_h;
  size_t compartment;
  double rate_mg_per_h;
} ks_infusion;

/* Parameter epochs: times at which a case's parameters change (a dataset's
 * time-varying covariates; occasions). Epoch 0 holds from t = 0 with the
 * system as the caller evaluated it; epoch k (1 <= k <= n) begins at
 * t_h[k - 1] (non-decreasing). In the regimen walk an epoch begins before
 * the events at its time (troughs, doses); in the record walk it begins
 * just before record[k - 1] acts, after the inputs and ADDL repeats due at
 * its time, so a record's own dose sees the record's parameters (its
 * route's F, lag and duration). enter() re-evaluates `sys` for epoch k;
 * the integrator then carries the state across: amounts are continuous,
 * eliminated amounts and AUCs keep accumulating, concentrations follow
 * the new volumes. */
typedef struct ks_epochs {
  size_t n;
  const double *t_h;    /* [n] */
  const size_t *record; /* [n] record walk: the record each one begins at */
  /* record walk: the epoch begins before the walk advances to its record
   * (after the previous record has acted) instead of at the record's time */
  int before_advance;
  ks_status (*enter)(void *user, size_t k, ks_system *sys, ks_error *err);
  void *user;
} ks_epochs;

typedef struct ks_schedule {
  ks_bolus *boluses; /* sorted by time */
  size_t n_boluses, cap_boluses;
  ks_infusion *infusions;
  size_t n_infusions, cap_infusions;
  double *breaks; /* sorted, distinct times at which the input changes,
                     and the administration times */
  size_t n_breaks, cap_breaks;
  double *dose_times; /* sorted, distinct administration times (before any
                         route lag): where troughs are taken */
  size_t n_dose_times, cap_dose_times;
  /* [n_dose_times]: when the administration at dose_times[i] ends: the end
   * of the longest infusion given then (its line's `duration`), else the
   * dose time itself (bolus, oral, nasal, sublingual; a route's own
   * absorption or lag does not prolong the administration) */
  double *dose_end_h;
  size_t cap_dose_end;
  /* Steady state (lines with ss): one dosing interval [0, ss_tau_h) of the
   * ss lines' first doses, as a schedule of its own whose inputs wrap
   * around the interval (a lag or infusion that runs past its end continues
   * at its start); ss_tau_h is 0 and ss_period unused without ss lines.
   * The case starts in the periodic solution of this interval. */
  double ss_tau_h;
  struct ks_schedule *ss_period;
  /* A dataset subject instead of a regimen (NULL otherwise): its records in
   * file order, walked by the record driver (NONMEM semantics, see
   * docs/datasets.md); the lists above are then unused. */
  const struct ks_record *records;
  size_t n_records;
  /* 0: output time j is record j's prediction; 1: the output times are a
   * grid (profiles of a dataset subject): each is recorded after the events
   * at or before it, and the walk goes on to the grid's end */
  int records_grid;
  const ks_epochs *epochs; /* NULL: one set of parameters for the case */
} ks_schedule;

/* Expands a case's regimen with the route targets evaluated in `sys` for the
 * case's subject. Fails only when out of memory. */
ks_status ks_schedule_build(ks_schedule *sch, const ks_system *sys,
                            const ks_case *c, ks_error *err);

/* A steady-state interval [0, tau) of its own in p: input k into
 * targets[k].compartment of amounts_mg[k] after targets[k].lag_h over
 * targets[k].duration_h (< 0: line_dur_h; 0: bolus), wrapped around the
 * interval; also sets p->ss_tau_h. KS_ERR_INPUT when an input is longer
 * than tau. */
ks_status ks_schedule_build_period(ks_schedule *p,
                                   const ks_route_target *targets,
                                   const double *amounts_mg, size_t n,
                                   double line_dur_h, double tau_h,
                                   ks_error *err);

/* Frees the buffers (not the struct itself) and zeroes it. */
void ks_schedule_free(ks_schedule *sch);

/* Total amount (mg) entering compartments by time t_h (boluses at or before
 * t_h, infusions up to t_h). Per compartment if `per_compartment` is not
 * NULL ([n_compartments], overwritten). Returns the total. */
double ks_schedule_dosed_mg(const ks_schedule *sch, double t_h,
                            size_t n_compartments, double *per_compartment);

/* Input rate (mg/h) per compartment on the segment that starts at breakpoint
 * index k: the sum of infusions active at the segment's midpoint. */
void ks_schedule_rates(const ks_schedule *sch, size_t k, double t_end_h,
                       size_t n_compartments, double *rate_mg_per_h);

#endif
