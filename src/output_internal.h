/* Private parts of the HDF5 output shared with the readers of its files. */
#ifndef KETASIM_OUTPUT_INTERNAL_H
#define KETASIM_OUTPUT_INTERNAL_H

/* 1 if `name` is one of the file's own variables (coordinates, profiles,
 * metrics, provenance), which a case variable or sweep axis cannot use. */
int ks__output_name_reserved(const char *name);

#endif
