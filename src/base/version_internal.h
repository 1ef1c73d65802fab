/* ketasim — version strings of ketasim and of the libraries it was built
 * against, for provenance attributes in output files and `ketasim --version`.
 *
 * All three return static, immutable strings built at compile time, so they
 * are re-entrant and may be called from any thread. The SUNDIALS and HDF5
 * strings name the headers ketasim was compiled with; HDF5's H5check() makes
 * sure the library loaded at run time has the same major.minor version.
 */
#ifndef KETASIM_VERSION_INTERNAL_H
#define KETASIM_VERSION_INTERNAL_H

/* "0.1.0": the project version (CMake's PROJECT_VERSION). */
const char *ks_version_string(void);

/* "6.4.1": the SUNDIALS version. */
const char *ks_sundials_version_string(void);

/* "1.10.8": the HDF5 version (with its subrelease suffix, if any). */
const char *ks_hdf5_version_string(void);

#endif
