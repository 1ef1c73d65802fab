#!/bin/bash
# The shared libraries export the API and nothing else: every dynamic symbol
# of libketasim starts with ks_ (ks__* only for the helpers libketasim-post
# calls, marked KS_POST_API in src/), the solver's internals stay hidden,
# and libketasim-post exports only ks_report_* and ks_export_*.
set -u
core=$1 post=$2
command -v nm >/dev/null || { echo "SKIP: nm not found"; exit 77; }
fail=0
# AddressSanitizer adds an __odr_asan.NAME indicator beside each exported
# global; it is the sanitizer's, not the library's.
syms() { nm -D --defined-only "$@" | awk '{print $3}' | grep -v '^__odr_asan\.' | sort; }
bad=$(syms "$core" | grep -v '^ks_')
[ -z "$bad" ] || { echo "FAIL: libketasim exports non-ks_ symbols: $bad"; fail=1; }
# The per-case system, dose schedule, metrics accumulators and integrators
# are internal (src/*/*_internal.h): not exported either.
for hidden in ks__expr_compile ks__drive ks__expm ks__results_open ks__report_ \
    ks_system_ ks_schedule_ ks_metrics_ ks_solver_ ks_exact_ ks_case_output_; do
  if syms "$core" "$post" | grep -q "^$hidden"; then
    echo "FAIL: libketasim exports $hidden"; fail=1
  fi
done
for api in ks_run ks_model_load ks_scenario_load ks_version ks_version_number; do
  syms "$core" | grep -qx "$api" || { echo "FAIL: libketasim lacks $api"; fail=1; }
done
bad=$(syms "$post" | grep -v '^ks_report_\|^ks_export_')
[ -z "$bad" ] || { echo "FAIL: libketasim-post exports: $bad"; fail=1; }
syms "$post" | grep -qx ks_report_write || { echo "FAIL: libketasim-post lacks ks_report_write"; fail=1; }
n=$(syms "$core" | wc -l)
[ $fail = 0 ] && echo "ok: libketasim exports $n symbols, all ks_"
exit $fail
