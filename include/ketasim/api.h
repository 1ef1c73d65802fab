/* ketasim — which declarations the shared libraries export.
 *
 * The libraries are compiled with hidden visibility (-fvisibility=hidden):
 * a function is visible to programs only when its declaration sits between
 * KS_API_BEGIN and KS_API_END (every public header wraps its declarations in
 * them) or carries KS_API. Everything else, ks__* helpers included, stays
 * inside the library, so programs cannot come to depend on it and the
 * dynamic symbol table holds the API and nothing more. The one exception is
 * marked KS_POST_API: the core helpers the post-processing library
 * (libketasim-post) calls; they are exported but declared only in headers
 * that are not installed.
 *
 * On a compiler without GCC's visibility attribute the macros are empty and
 * every function is exported, as C does by default. */
#ifndef KETASIM_API_H
#define KETASIM_API_H

#if defined(__GNUC__) || defined(__clang__)
#define KS_API __attribute__((visibility("default")))
#define KS_API_BEGIN _Pragma("GCC visibility push(default)")
#define KS_API_END _Pragma("GCC visibility pop")
#else
#define KS_API
#define KS_API_BEGIN
#define KS_API_END
#endif

/* Core helpers shared with libketasim-post; not part of the API. */
#define KS_POST_API_BEGIN KS_API_BEGIN
#define KS_POST_API_END KS_API_END

#endif
