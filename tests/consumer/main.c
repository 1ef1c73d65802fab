/* A program that uses the installed ketasim: checks that the headers and the
 * library agree on the version, runs a scenario into an HDF5 file and writes
 * its CSV export with the post-processing library.
 *
 *   consumer SCENARIO OUT.h5 CSV_PREFIX */
#include <stdio.h>

#include <ketasim/export.h>
#include <ketasim/run.h>
#include <ketasim/scenario.h>
#include <ketasim/version.h>

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: consumer SCENARIO OUT.h5 CSV_PREFIX\n");
    return 2;
  }
  if (ks_version_number() != KETASIM_VERSION_NUMBER) {
    fprintf(stderr, "headers %s, library %s\n", KETASIM_VERSION_STRING,
            ks_version());
    return 1;
  }
  ks_error err;
  ks_error_clear(&err);
  ks_scenario *s = NULL;
  ks_run_options ro = ks_run_options_default();
  ro.output_path = argv[2];
  ro.threads = 1;
  ks_export_options eo = ks_export_options_default();
  ks_export_result res;
  ks_run_result rr;
  if (ks_scenario_load(argv[1], NULL, &s, &err) != KS_OK ||
      ks_run(s, &ro, &rr, &err) != KS_OK ||
      ks_export_csv(argv[2], argv[3], &eo, &res, &err) != KS_OK) {
    fprintf(stderr, "consumer: %s\n", err.message);
    ks_scenario_free(&s);
    return 1;
  }
  printf("ketasim %s: %zu cases, metrics in %s\n", ks_version(),
         ks_scenario_n_cases(s), res.metrics_path);
  ks_scenario_free(&s);
  return 0;
}
