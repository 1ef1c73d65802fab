#include "version_internal.h"

#include <hdf5.h>
#include <sundials/sundials_config.h>

#include "ketasim/version.h"

/* Compile-time strings rather than SUNDIALSGetVersion()/H5get_libversion():
 * those need a buffer, and a buffer filled at run time is either shared
 * mutable state (needing a lock or a once-flag) or the caller's problem. */
#define KS_STR2_(x) #x
#define KS_STR_(x) KS_STR2_(x)

const char *ks_version_string(void) { return KETASIM_VERSION_STRING; }

int ks_version_number(void) { return KETASIM_VERSION_NUMBER; }

const char *ks_sundials_version_string(void) { return SUNDIALS_VERSION; }

const char *ks_hdf5_version_string(void) {
  return KS_STR_(H5_VERS_MAJOR) "." KS_STR_(H5_VERS_MINOR) "." KS_STR_(
      H5_VERS_RELEASE) H5_VERS_SUBRELEASE;
}
