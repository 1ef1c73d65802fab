/* ketasim-write-experiment — the profile writer against the disk, and the
 * compression filters HDF5 has (and the Debian-packaged plugins), on real
 * profiles.
 *
 *   ketasim-write-experiment PROFILES.h5 [DIR]
 *
 * PROFILES.h5 is a ketasim output file with profiles (any compression); its
 * `concentration` [case, analyte, time] (float64) is the payload. In DIR
 * (default: the file's directory), one thread:
 *
 *   dd       the payload's bytes written with write(2) in 1 MiB pieces,
 *            then fdatasync: the disk's sequential bandwidth in this run
 *   writer   the payload written by ketasim's writer (ks_output, blocks of
 *            64 cases, `compression: none`), committed, then fdatasync
 *   filters  the payload written with the writer's chunk shape (whole
 *            cases, about 512 KiB) through each filter: none, shuffle +
 *            deflate levels 1-9, szip (libaec, entropy coding with nearest-
 *            neighbour preprocessing) with and without shuffle, and the
 *            Debian-packaged plugins where installed (LZ4 with and without
 *            shuffle; Blosc with LZ4, zstd or zlib and byte or bit shuffle),
 *            then fdatasync; read back and compared bit for bit; then
 *            the deflate rows again with libdeflate as the compressor
 *            (ketasim's writer; the same filter and format), where built
 *
 * One JSON line per measurement: what, MB/s of raw payload per wall second
 * and per CPU second of the writing thread (the writer's own thread; the
 * ketasim writer's line counts the calling thread, which does the HDF5
 * work; a filter's line the whole process, as a plugin may use threads of
 * its own), the file's size over the payload's (ratio), seconds. Every write is followed by fdatasync
 * so that the page cache does not flatter any of them. */
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "deflate_filter.h"
#include "ketasim/output.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU seconds of this thread: the cost per core, which other jobs on a
 * shared machine inflate far less than the wall time */
static double cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int sync_file(const char *path) {
  int fd = open(path, O_RDONLY);
  if (fd < 0)
    return -1;
  int rc = fdatasync(fd);
  close(fd);
  return rc;
}

static double file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (double)st.st_size : -1;
}

static void line(const char *what, double bytes, double secs, double cpu,
                 double size) {
  printf("{\"what\": \"%s\", \"mb_per_s\": %.1f, \"mb_per_cpu_s\": %.1f, "
         "\"ratio\": %.4f, \"seconds\": %.3f, \"cpu_seconds\": %.3f, "
         "\"payload_mb\": %.1f}\n",
         what, bytes / 1e6 / secs, bytes / 1e6 / cpu, size / bytes, secs, cpu,
         bytes / 1e6);
  fflush(stdout);
}

static int dd(const char *path, const double *data, size_t bytes) {
  double t0 = now_s(), c0 = cpu_s();
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0)
    return -1;
  const char *p = (const char *)data;
  for (size_t done = 0; done < bytes;) {
    size_t n = bytes - done < (1u << 20) ? bytes - done : (1u << 20);
    ssize_t k = write(fd, p + done, n);
    if (k <= 0) {
      close(fd);
      return -1;
    }
    done += (size_t)k;
  }
  int rc = fdatasync(fd);
  close(fd);
  line("dd (write + fdatasync)", (double)bytes, now_s() - t0, cpu_s() - c0,
       file_size(path));
  unlink(path);
  return rc;
}

/* ketasim's writer, uncompressed, blocks of 64 cases. */
static int writer(const char *path, const double *conc, size_t nc, size_t na,
                  size_t nt) {
  double *times = calloc(nt, sizeof *times), *zero = calloc(64 * na, 8);
  int32_t status[64] = {0};
  const char *labels[64],
      *names[8] = {"a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7"};
  if (!times || !zero || na > 8)
    return -1;
  for (size_t i = 0; i < nt; i++)
    times[i] = (double)i / 6.0;
  for (int i = 0; i < 64; i++)
    labels[i] = "case";
  ks_output_layout l;
  memset(&l, 0, sizeof l);
  l.n_cases = nc;
  l.n_analytes = na;
  l.n_times = nt;
  l.analyte_names = names;
  l.times_h = times;
  l.profiles = 1;
  l.uncompressed = 1;
  l.title = "write experiment";
  l.scenario_text = l.model_text = l.command_line = "";
  ks_error err;
  ks_error_clear(&err);
  ks_output *o = NULL;
  double t0 = now_s(), c0 = cpu_s();
  ks_status rc = ks_output_create(path, &l, &o, &err);
  for (size_t first = 0; rc == KS_OK && first < nc; first += 64) {
    ks_output_block b;
    memset(&b, 0, sizeof b);
    b.first = first;
    b.n = nc - first < 64 ? nc - first : 64;
    b.conc_ng_per_ml = conc + first * na * nt;
    b.cmax_ng_per_ml = b.tmax_h = b.auc_ng_h_per_ml = b.cmin_ng_per_ml = zero;
    b.status = status;
    b.labels = labels;
    rc = ks_output_write_block(o, &b, &err);
  }
  if (rc == KS_OK)
    rc = ks_output_commit(&o, &err);
  else
    ks_output_abort(&o);
  if (rc == KS_OK && sync_file(path) == 0)
    line("ketasim writer, compression none (create + blocks + commit + "
         "fdatasync)",
         (double)(nc * na * nt * 8), now_s() - t0, cpu_s() - c0,
         file_size(path));
  else
    fprintf(stderr, "writer: %s\n", err.message);
  free(times);
  free(zero);
  unlink(path);
  return rc == KS_OK ? 0 : -1;
}

/* CPU seconds of the whole process: a filter plugin may compress on
 * threads of its own */
static double proc_cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct filter {
  const char *name;
  int shuffle, deflate, szip;
  /* a filter from a plugin (0: none): HDF5 loads it from its plugin
   * directory when the dataset is created; absent, the line says so */
  unsigned id;
  size_t ncd;
  unsigned cd[8];
} filter;

/* The payload through one filter, chunks of whole cases (about 512 KiB as
 * the writer makes them), read back and compared. */
static int filtered(const char *path, const filter *f, const double *conc,
                    size_t nc, size_t na, size_t nt, double *back) {
  hsize_t dims[3] = {nc, na, nt};
  hsize_t per = (hsize_t)(512 * 1024 / (na * nt * 8));
  hsize_t chunk[3] = {per ? per : 1, na, nt};
  double t0 = now_s(), c0 = proc_cpu_s();
  hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hid_t space = H5Screate_simple(3, dims, NULL);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(dcpl, 3, chunk);
  if (f->shuffle)
    H5Pset_shuffle(dcpl);
  if (f->deflate)
    H5Pset_deflate(dcpl, (unsigned)f->deflate);
  if (f->szip)
    H5Pset_szip(dcpl, H5_SZIP_NN_OPTION_MASK, (unsigned)f->szip);
  if (f->id)
    H5Pset_filter(dcpl, (H5Z_filter_t)f->id, H5Z_FLAG_MANDATORY, f->ncd, f->cd);
  hid_t d = -1;
  H5E_BEGIN_TRY {
    d = H5Dcreate2(file, "concentration", H5T_IEEE_F64LE, space, H5P_DEFAULT,
                   dcpl, H5P_DEFAULT);
  }
  H5E_END_TRY;
  if (d < 0 && f->id) { /* the plugin is not installed */
    H5Pclose(dcpl);
    H5Sclose(space);
    H5Fclose(file);
    unlink(path);
    printf("{\"what\": \"%s\", \"unavailable\": \"filter %u: no plugin\"}\n",
           f->name, f->id);
    return 0;
  }
  herr_t w =
      H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, conc);
  H5Dclose(d);
  H5Pclose(dcpl);
  H5Sclose(space);
  H5Fclose(file);
  if (w < 0 || sync_file(path) != 0)
    return -1;
  double secs = now_s() - t0, cpu = proc_cpu_s() - c0;
  double bytes = (double)(nc * na * nt * 8);
  line(f->name, bytes, secs, cpu, file_size(path));
  file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  d = H5Dopen2(file, "concentration", H5P_DEFAULT);
  herr_t r = H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, back);
  H5Dclose(d);
  H5Fclose(file);
  unlink(path);
  if (r < 0 || memcmp(back, conc, nc * na * nt * 8) != 0) {
    fprintf(stderr, "%s: read back differs\n", f->name);
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: ketasim-write-experiment PROFILES.h5 [DIR]\n");
    return 2;
  }
  char dir[4096], path[4200];
  if (argc > 2)
    snprintf(dir, sizeof dir, "%s", argv[2]);
  else {
    snprintf(dir, sizeof dir, "%s", argv[1]);
    char *s = strrchr(dir, '/');
    if (s)
      *s = '\0';
    else
      snprintf(dir, sizeof dir, ".");
  }
  hid_t file = H5Fopen(argv[1], H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t d = file >= 0 ? H5Dopen2(file, "concentration", H5P_DEFAULT) : -1;
  hid_t sp = d >= 0 ? H5Dget_space(d) : -1;
  hsize_t dims[3] = {0, 0, 0};
  if (sp < 0 || H5Sget_simple_extent_ndims(sp) != 3 ||
      H5Sget_simple_extent_dims(sp, dims, NULL) != 3) {
    fprintf(stderr, "%s: no concentration [case, analyte, time]\n", argv[1]);
    return 1;
  }
  size_t nc = dims[0], na = dims[1], nt = dims[2], n = nc * na * nt;
  double *conc = malloc(n * 8), *back = malloc(n * 8);
  if (!conc || !back ||
      H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, conc) < 0)
    return 1;
  H5Sclose(sp);
  H5Dclose(d);
  H5Fclose(file);
  snprintf(path, sizeof path, "%s/write-experiment-%ld.out", dir,
           (long)getpid());
  int rc = dd(path, conc, n * 8);
  /* HDF5's own filters first: ketasim's writer registers libdeflate as the
   * deflate filter's compressor (src/output/deflate_filter.c) for the rest
   * of the process */
  static const filter filters[] = {
      {"none", 0, 0, 0, 0, 0, {0}},
      {"shuffle + deflate 1", 1, 1, 0, 0, 0, {0}},
      {"shuffle + deflate 2", 1, 2, 0, 0, 0, {0}},
      {"shuffle + deflate 4", 1, 4, 0, 0, 0, {0}},
      {"shuffle + deflate 6", 1, 6, 0, 0, 0, {0}},
      {"shuffle + deflate 9", 1, 9, 0, 0, 0, {0}},
      {"deflate 1 (no shuffle)", 0, 1, 0, 0, 0, {0}},
      {"szip nn 32", 0, 0, 32, 0, 0, {0}},
      {"shuffle + szip nn 32", 1, 0, 32, 0, 0, {0}},
      /* Debian's hdf5-filter-plugin (LZ4, 32004) and
       * hdf5-filter-plugin-blosc-serial (Blosc, 32001: cd 4 level, 5 shuffle
       * 0/1 byte/2 bit, 6 codec 1 lz4/4 zlib/5 zstd) */
      {"lz4", 0, 0, 0, 32004, 0, {0}},
      {"shuffle + lz4", 1, 0, 0, 32004, 0, {0}},
      {"blosc lz4 5, byte shuffle", 0, 0, 0, 32001, 7, {0, 0, 0, 0, 5, 1, 1}},
      {"blosc lz4 5, bit shuffle", 0, 0, 0, 32001, 7, {0, 0, 0, 0, 5, 2, 1}},
      {"blosc lz4 9, bit shuffle", 0, 0, 0, 32001, 7, {0, 0, 0, 0, 9, 2, 1}},
      {"blosc zstd 1, byte shuffle", 0, 0, 0, 32001, 7, {0, 0, 0, 0, 1, 1, 5}},
      {"blosc zstd 1, bit shuffle", 0, 0, 0, 32001, 7, {0, 0, 0, 0, 1, 2, 5}},
      {"blosc zstd 3, bit shuffle", 0, 0, 0, 32001, 7, {0, 0, 0, 0, 3, 2, 5}},
      {"blosc zlib 1, bit shuffle", 0, 0, 0, 32001, 7, {0, 0, 0, 0, 1, 2, 4}},
  };
  for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++)
    rc |= filtered(path, &filters[i], conc, nc, na, nt, back);
  rc |= writer(path, conc, nc, na, nt);
  rc |= dd(path, conc, n * 8); /* again, after: the disk may drift */
  /* The same deflate filter (the file says "deflate, level N"; any zlib
   * reads it), compressed by libdeflate as ketasim's writer does */
  static const filter fast[] = {
      {"shuffle + deflate 1 (libdeflate)", 1, 1, 0, 0, 0, {0}},
      {"shuffle + deflate 2 (libdeflate)", 1, 2, 0, 0, 0, {0}},
      {"shuffle + deflate 4 (libdeflate)", 1, 4, 0, 0, 0, {0}},
      {"shuffle + deflate 6 (libdeflate)", 1, 6, 0, 0, 0, {0}},
      {"shuffle + deflate 9 (libdeflate)", 1, 9, 0, 0, 0, {0}},
      {"deflate 1 (no shuffle, libdeflate)", 0, 1, 0, 0, 0, {0}},
  };
  int have = ks__deflate_filter_register();
  for (size_t i = 0; i < sizeof fast / sizeof fast[0]; i++)
    if (have > 0)
      rc |= filtered(path, &fast[i], conc, nc, na, nt, back);
    else
      printf("{\"what\": \"%s\", \"unavailable\": \"built without "
             "libdeflate\"}\n",
             fast[i].name);
  free(conc);
  free(back);
  return rc ? 1 : 0;
}
