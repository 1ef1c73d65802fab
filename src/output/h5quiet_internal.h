/* The library must not print: HDF5's automatic error printing is switched
 * off for the duration of each public call that uses HDF5, and the caller's
 * handler is put back afterwards. Shared by the writer and the reader. */
#ifndef KETASIM_H5QUIET_INTERNAL_H
#define KETASIM_H5QUIET_INTERNAL_H

#include <hdf5.h>

typedef struct h5_quiet {
  H5E_auto2_t func;
  void *data;
} h5_quiet;

static inline void quiet_begin(h5_quiet *q) {
  q->func = NULL;
  q->data = NULL;
  H5Eget_auto2(H5E_DEFAULT, &q->func, &q->data);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

static inline void quiet_end(const h5_quiet *q) {
  H5Eset_auto2(H5E_DEFAULT, q->func, q->data);
}

#endif
