/* ketasim._core: the C side of the Python package (CPython C API).
 *
 *   run_image(scenario, is_text, threads, models) -> bytes
 *       loads the scenario (a path, or YAML text when is_text), runs every
 *       case and returns the HDF5 file the run would write, built in memory
 *       by the same writer (ks_run_options.output_image): nothing touches
 *       the disk. The GIL is released while the cases are solved.
 *   check(scenario, is_text, models) -> list of warning strings
 *       loads the scenario and checks its `report` section; raises
 *       ketasim.ScenarioError(message, file, line, column, status).
 *   version() -> str
 *
 * `models` is None or a dict: model name -> YAML text of the model. A
 * scenario's `model: NAME` is looked up there first (ks_model_resolver),
 * then on disk as usual.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

#include "ketasim/report.h"
#include "ketasim/run.h"
#include "ketasim/scenario.h"

static PyObject *scenario_error; /* ketasim.ScenarioError, set by __init__ */

static PyObject *raise_error(const ks_error *e) {
  PyObject *cls = scenario_error ? scenario_error : PyExc_RuntimeError;
  PyObject *args = Py_BuildValue("(ssiis)", e->message, e->file, e->line,
                                 e->column, ks_status_name(e->status));
  if (args) {
    PyErr_SetObject(cls, args);
    Py_DECREF(args);
  }
  return NULL;
}

/* ks_model_resolver over the `models` dict; the GIL is held (scenarios are
 * loaded before it is released). */
static ks_status resolve(void *user, const char *name, ks_model **model,
                         ks_error *err) {
  PyObject *text = PyDict_GetItemString((PyObject *)user, name);
  if (!text)
    return KS_OK; /* not given: the usual lookup */
  Py_ssize_t len = 0;
  const char *utf8 = PyUnicode_AsUTF8AndSize(text, &len);
  if (!utf8) {
    PyErr_Clear();
    return ks_error_set(err, KS_ERR_ARG, NULL,
                        "models['%s'] must be the model's YAML text", name);
  }
  char file[300];
  snprintf(file, sizeof file, "<models['%s']>", name);
  return ks_model_parse(file, utf8, (size_t)len, model, err);
}

static ks_status load(const char *scenario, int is_text, PyObject *models,
                      ks_scenario **s, ks_error *err) {
  ks_scenario_options o = {0};
  if (models && PyDict_Check(models)) {
    o.resolve_model = resolve;
    o.resolver_user = models;
  }
  if (is_text)
    return ks_scenario_parse("<string>", scenario, strlen(scenario), &o, s,
                             err);
  return ks_scenario_load(scenario, &o, s, err);
}

static PyObject *warnings_of(const ks_scenario *s) {
  PyObject *list = PyList_New(0);
  char line[1024];
  for (size_t i = 0; list && i < ks_scenario_n_warnings(s); i++) {
    PyObject *w = PyUnicode_FromString(
        ks_warning_format(ks_scenario_warning(s, i), line, sizeof line));
    if (!w || PyList_Append(list, w) < 0) {
      Py_XDECREF(w);
      Py_CLEAR(list);
      break;
    }
    Py_DECREF(w);
  }
  return list;
}

static PyObject *py_check(PyObject *self, PyObject *args) {
  (void)self;
  const char *scenario;
  int is_text;
  PyObject *models = Py_None;
  if (!PyArg_ParseTuple(args, "sp|O", &scenario, &is_text, &models))
    return NULL;
  ks_error err;
  ks_error_clear(&err);
  ks_scenario *s = NULL;
  ks_status rc = load(scenario, is_text, models, &s, &err);
  PyObject *out = rc == KS_OK ? warnings_of(s) : raise_error(&err);
  ks_scenario_free(&s);
  return out;
}

static PyObject *py_run_image(PyObject *self, PyObject *args) {
  (void)self;
  const char *scenario;
  int is_text, threads;
  PyObject *models = Py_None;
  if (!PyArg_ParseTuple(args, "spi|O", &scenario, &is_text, &threads, &models))
    return NULL;
  ks_error err;
  ks_error_clear(&err);
  ks_scenario *s = NULL;
  ks_output_image image = {0};
  ks_run_result res;
  ks_status rc = load(scenario, is_text, models, &s, &err);
  if (rc == KS_OK) {
    ks_run_options o = ks_run_options_default();
    o.threads = threads;
    o.output_image = &image;
    o.command_line = "ketasim.run (Python)";
    Py_BEGIN_ALLOW_THREADS rc = ks_run(s, &o, &res, &err);
    Py_END_ALLOW_THREADS
  }
  ks_scenario_free(&s);
  if (rc != KS_OK)
    return raise_error(&err);
  PyObject *bytes =
      PyBytes_FromStringAndSize(image.data, (Py_ssize_t)image.size);
  ks_output_image_free(&image);
  return bytes;
}

static PyObject *py_set_error_class(PyObject *self, PyObject *cls) {
  (void)self;
  Py_XDECREF(scenario_error);
  Py_INCREF(cls);
  scenario_error = cls;
  Py_RETURN_NONE;
}

static PyObject *py_version(PyObject *self, PyObject *args) {
  (void)self;
  (void)args;
  return PyUnicode_FromString(ks_version());
}

static PyMethodDef methods[] = {
    {"run_image", py_run_image, METH_VARARGS,
     "run_image(scenario, is_text, threads) -> bytes of the HDF5 file"},
    {"check", py_check, METH_VARARGS,
     "check(scenario, is_text) -> list of warnings; raises ScenarioError"},
    {"_set_error_class", py_set_error_class, METH_O, NULL},
    {"version", py_version, METH_NOARGS, "the library's version"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT,
                                    "_core",
                                    "ketasim's C library",
                                    -1,
                                    methods,
                                    NULL,
                                    NULL,
                                    NULL,
                                    NULL};

PyMODINIT_FUNC PyInit__core(void);
PyMODINIT_FUNC PyInit__core(void) { return PyModule_Create(&module); }
