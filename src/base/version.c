#include "version_internal.h"

#include <hdf5.h>
#include <sundials/sundials_config.h>

#ifndef KS_VERSION
#error "KS_VERSION must be defined by the build (e.g. -DKS_VERSION=\"0.1.0\")"
#endif

/* Compile-time strings rather than SUNDIALSGetVersion()/H5get_libversion():
 * those need a buffer, and a buffer filled at run time is either shared
 * mutable state (needing a lock or a once-flag) or the caller's problem. */
#define KS_STR2_(x) #x
#define KS_STR_(x) KS_STR2_(x)

const char *ks_version_string(void) { return KS_VERSION; }

const char *ks_sundials_version_string(void) { return SUNDIALS_VERSION; }

const char *ks_hdf5_version_string(void) {
  return KS_STR_(H5_VERS_MAJOR) "." KS_STR_(H5_VERS_MINOR) "." KS_STR_(
      H5_VERS_RELEASE) H5_VERS_SUBRELEASE;
}
