#include "ketasim/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *ks_status_name(ks_status status) {
  switch (status) {
#define KS_STATUS_NAME_(name, value, text)                                     \
  case name:                                                                   \
    return #name;
    KS_STATUS_LIST(KS_STATUS_NAME_)
#undef KS_STATUS_NAME_
  }
  return "KS_UNKNOWN";
}

const char *ks_status_str(ks_status status) {
  switch (status) {
#define KS_STATUS_STR_(name, value, text)                                      \
  case name:                                                                   \
    return text;
    KS_STATUS_LIST(KS_STATUS_STR_)
#undef KS_STATUS_STR_
  }
  return "unknown status";
}

void ks_error_clear(ks_error *err) {
  if (err)
    memset(err, 0, sizeof *err);
}

ks_status ks_error_set(ks_error *err, ks_status status, const ks_srcloc *loc,
                       const char *fmt, ...) {
  if (!err || err->status != KS_OK)
    return status;
  err->status = status;
  err->line = loc ? loc->line : 0;
  err->column = loc ? loc->column : 0;
  err->file[0] = '\0';
  if (loc && loc->file)
    snprintf(err->file, sizeof err->file, "%s", loc->file);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->message, sizeof err->message, fmt, ap);
  va_end(ap);
  return status;
}

static char *format_as(const ks_error *err, const char *severity, char *buf,
                       size_t size) {
  if (!buf || size == 0)
    return buf;
  if (!err) {
    buf[0] = '\0';
    return buf;
  }
  size_t n = 0;
  if (err->file[0]) {
    if (err->line > 0 && err->column > 0)
      n = (size_t)snprintf(buf, size, "%s:%d:%d: ", err->file, err->line,
                           err->column);
    else if (err->line > 0)
      n = (size_t)snprintf(buf, size, "%s:%d: ", err->file, err->line);
    else
      n = (size_t)snprintf(buf, size, "%s: ", err->file);
  }
  if (n < size)
    snprintf(buf + n, size - n, "%s: %s", severity,
             err->message[0] ? err->message : ks_status_str(err->status));
  return buf;
}

char *ks_error_format(const ks_error *err, char *buf, size_t size) {
  return format_as(err, "error", buf, size);
}

char *ks_warning_format(const ks_error *warning, char *buf, size_t size) {
  return format_as(warning, "warning", buf, size);
}
