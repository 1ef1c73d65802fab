/* ketasim — hooks for tests only.
 *
 * Out-of-memory testing. Every allocation libketasim makes goes through one
 * choke point (src/alloc.c). A test arms it with ks_test_alloc_fail_after(n):
 * the n-th allocation the calling thread makes from then on returns NULL, once;
 * every other allocation succeeds. Looping n from 1 until the injected failure
 * no longer fires walks every allocation of a code path and proves that each
 * one backs out cleanly: an error with status KS_ERR_NOMEM, nothing leaked,
 * no crash.
 *
 * The counters are thread-local: a failure is injected only into the thread
 * that armed the hook, so OpenMP worker threads are never affected and a test
 * that wants to cover a run must run it with one thread. Allocations made by
 * libyaml, HDF5, SUNDIALS and the C library (fopen) do not go through this
 * hook and cannot be failed by it.
 *
 * Production code never calls these functions; while the hook is disarmed
 * (the default) the allocator only increments two thread-local counters.
 */
#ifndef KETASIM_TESTING_H
#define KETASIM_TESTING_H

#include "ketasim/api.h"

#ifdef __cplusplus
extern "C" {
#endif
KS_API_BEGIN

/* Arms the hook on the calling thread: the n-th allocation (ks__malloc,
 * ks__calloc or ks__realloc) from now on fails; n <= 0 disarms it. Resets the
 * counters read below. */
void ks_test_alloc_fail_after(long n);

/* Allocations attempted on the calling thread since the last
 * ks_test_alloc_fail_after(), the failed one included. */
long ks_test_alloc_count(void);

/* 1 if the armed failure has been injected, else 0. */
int ks_test_alloc_failed(void);

/* Blocks allocated minus blocks freed on the calling thread since the last
 * ks_test_alloc_fail_after(); 0 after a call that cleaned up after itself
 * (valid when everything was allocated and freed on this thread). */
long ks_test_alloc_live(void);

KS_API_END
#ifdef __cplusplus
}
#endif
#endif
