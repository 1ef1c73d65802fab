/* The deflate filter (H5Z_FILTER_DEFLATE) with libdeflate as its compressor.
 *
 * HDF5's built-in deflate filter compresses through zlib. libdeflate writes
 * the same format (RFC 1950 zlib streams of RFC 1951 deflate) at several
 * times zlib's speed per CPU-second (bench/README.md, "Writer and
 * compression"). Registered under the standard filter ID, it replaces the
 * built-in class in this process only: the file's filter pipeline still
 * reads "deflate, level N", so every reader (h5py, xarray, netCDF-C, R,
 * MATLAB) inflates the chunks with its own zlib and no plugin. Reading keeps
 * zlib's inflate, which needs no size hint, growing the buffer like the
 * built-in filter.
 *
 * Built only where CMake finds libdeflate (KETASIM_HAVE_LIBDEFLATE); without
 * it ks__deflate_filter_register does nothing and HDF5's filter stays. */
#define _GNU_SOURCE /* RTLD_DEFAULT */
#include "deflate_filter.h"

#ifdef KETASIM_HAVE_LIBDEFLATE

#include <dlfcn.h>
#include <hdf5.h>
#include <libdeflate.h>
#include <limits.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>
#include <zlib.h>

/* One spare compressor per level (its allocation and set-up cost more than
 * compressing a small chunk): taken by exchange, put back if the slot is
 * still empty, freed otherwise; concurrent callers each get their own. */
#define KS_DEFLATE_LEVELS 13
static _Atomic(struct libdeflate_compressor *) spare[KS_DEFLATE_LEVELS];

static struct libdeflate_compressor *take_compressor(int level) {
  struct libdeflate_compressor *c = atomic_exchange(&spare[level], NULL);
  return c ? c : libdeflate_alloc_compressor(level);
}

static void put_compressor(int level, struct libdeflate_compressor *c) {
  struct libdeflate_compressor *empty = NULL;
  if (!atomic_compare_exchange_strong(&spare[level], &empty, c))
    libdeflate_free_compressor(c);
}

static size_t compress_chunk(size_t cd_nelmts, const unsigned cd_values[],
                             size_t nbytes, size_t *buf_size, void **buf) {
  /* The built-in filter's range, 0-9; zlib level 0 (stored blocks) is
   * libdeflate level 0 too. */
  int level = cd_nelmts > 0 && cd_values[0] <= 9 ? (int)cd_values[0] : 6;
  struct libdeflate_compressor *c = take_compressor(level);
  if (!c)
    return 0;
  size_t cap = libdeflate_zlib_compress_bound(c, nbytes);
  void *out = H5allocate_memory(cap, 0);
  size_t n = out ? libdeflate_zlib_compress(c, *buf, nbytes, out, cap) : 0;
  put_compressor(level, c);
  if (n == 0) { /* does not fit: the filter fails, as zlib's would */
    if (out)
      H5free_memory(out);
    return 0;
  }
  H5free_memory(*buf);
  *buf = out;
  *buf_size = cap;
  return n;
}

static size_t inflate_chunk(size_t nbytes, size_t *buf_size, void **buf) {
  if (nbytes > UINT_MAX)
    return 0;
  size_t cap = *buf_size > 0 ? *buf_size : nbytes;
  if (cap == 0)
    cap = 1;
  unsigned char *out = H5allocate_memory(cap, 0);
  if (!out)
    return 0;
  z_stream z = {0};
  z.next_in = *buf;
  z.avail_in = (uInt)nbytes;
  if (inflateInit(&z) != Z_OK) {
    H5free_memory(out);
    return 0;
  }
  int st = Z_OK;
  for (;;) {
    size_t done = (size_t)(z.next_out ? z.next_out - out : 0);
    size_t room = cap - done;
    z.next_out = out + done;
    z.avail_out = room > UINT_MAX ? UINT_MAX : (uInt)room;
    st = inflate(&z, Z_SYNC_FLUSH);
    if (st == Z_STREAM_END)
      break;
    if (st != Z_OK || (z.avail_in == 0 && z.avail_out > 0))
      break;                /* corrupt or truncated stream */
    if (z.avail_out == 0) { /* full: double it */
      size_t used = (size_t)(z.next_out - out);
      if (cap > ((size_t)-1) / 2)
        break;
      unsigned char *grown = H5resize_memory(out, cap * 2);
      if (!grown)
        break;
      out = grown;
      cap *= 2;
      z.next_out = out + used;
    }
  }
  size_t total = (size_t)z.total_out;
  inflateEnd(&z);
  if (st != Z_STREAM_END) {
    H5free_memory(out);
    return 0;
  }
  H5free_memory(*buf);
  *buf = out;
  *buf_size = cap;
  return total;
}

static size_t deflate_filter(unsigned flags, size_t cd_nelmts,
                             const unsigned cd_values[], size_t nbytes,
                             size_t *buf_size, void **buf) {
  if (flags & H5Z_FLAG_REVERSE)
    return inflate_chunk(nbytes, buf_size, buf);
  return compress_chunk(cd_nelmts, cd_values, nbytes, buf_size, buf);
}

/* HDF5's public H5Zregister refuses the predefined filter IDs ("unable to
 * modify predefined filters"), so the class is replaced through the
 * library's own H5Z_register, which H5Zregister calls after that check and
 * which Debian's libhdf5 exports (1.8 to 1.14: herr_t (const H5Z_class2_t
 * *)); H5Z_find tells whose class is in place. Both are looked up at run
 * time: where either is missing, HDF5's zlib filter stays. The table is
 * written only while the class is not ours: at the first output of the
 * process (and after an H5close), before any writer thread runs. */
typedef herr_t (*register_fn)(const H5Z_class2_t *);
typedef H5Z_class2_t *(*find_fn)(H5Z_filter_t);

int ks__deflate_filter_register(void) {
  static const H5Z_class2_t cls = {
      H5Z_CLASS_T_VERS, H5Z_FILTER_DEFLATE, 1, 1, "deflate", NULL, NULL,
      deflate_filter};
  /* the public call first: it initialises HDF5's filter table, whose
   * set-up would otherwise put the built-in class back over ours */
  if (H5Zfilter_avail(H5Z_FILTER_DEFLATE) <= 0)
    return 0;
  register_fn reg;
  find_fn find;
  void *r = dlsym(RTLD_DEFAULT, "H5Z_register");
  void *f = dlsym(RTLD_DEFAULT, "H5Z_find");
  if (!r || !f)
    return 0;
  memcpy(&reg, &r, sizeof reg); /* object to function pointer (POSIX) */
  memcpy(&find, &f, sizeof find);
  const H5Z_class2_t *now = find(H5Z_FILTER_DEFLATE);
  if (now && now->filter == deflate_filter)
    return 1;
  return reg(&cls) >= 0 ? 1 : -1;
}

#else

int ks__deflate_filter_register(void) { return 0; }

#endif
