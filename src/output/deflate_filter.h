#ifndef KS_DEFLATE_FILTER_H
#define KS_DEFLATE_FILTER_H

/* Registers libdeflate as the compressor of HDF5's deflate filter
 * (deflate_filter.c): 1 done, 0 built without libdeflate (HDF5's zlib
 * filter stays), -1 HDF5 refused. Idempotent; call before creating a
 * dataset, again after any H5close. */
int ks__deflate_filter_register(void);

#endif
