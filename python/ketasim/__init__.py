"""ketasim from Python: run a scenario and get its results as an xarray.Dataset.

    import ketasim
    ds = ketasim.run("scenarios/route-comparison.yaml", threads=4)
    ds["concentration"].sel(analyte="ketamine")

`run` solves every case in the C library and builds the HDF5 file the
`ketasim run` program would write -- the same writer, the same variables,
dimensions and attributes -- in memory, then opens it with xarray. Nothing
is written to disk. `check` loads a scenario without running it and raises
`ScenarioError` (with .file, .line, .column and .message) when it is wrong.
"""

import io as _io

from . import _core

__all__ = ["run", "run_bytes", "check", "ScenarioError", "__version__"]

__version__ = _core.version()


class ScenarioError(Exception):
    """A scenario or model that ketasim refuses.

    Attributes: message, file, line, column (1-based; 0 when unknown) and
    status (the library's status name, e.g. "KS_ERR_INPUT"). str() gives
    "file:line:column: message", as the `ketasim` program prints it."""

    def __init__(self, message, file="", line=0, column=0, status=""):
        super().__init__(message, file, line, column, status)
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.status = status

    def __str__(self):
        where = self.file
        if self.line:
            where += f":{self.line}"
            if self.column:
                where += f":{self.column}"
        return f"{where}: {self.message}" if where else self.message


_core._set_error_class(ScenarioError)


def _source(scenario):
    """(text or path, is_text): YAML text has a line break, a path has none."""
    if hasattr(scenario, "__fspath__"):
        return str(scenario.__fspath__()), False
    if not isinstance(scenario, str):
        raise TypeError("scenario: a path or YAML text, got "
                        f"{type(scenario).__name__}")
    return scenario, "\n" in scenario


def _models(models):
    if models is None:
        return None
    if not isinstance(models, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in models.items()):
        raise TypeError("models: a dict of model name -> the model's YAML text")
    return dict(models)


def run_bytes(scenario, threads=0, models=None):
    """Runs `scenario` (a path or YAML text) and returns the bytes of the HDF5
    file `ketasim run` would write. threads=0: all available. `models`: an
    optional dict of model name -> YAML text, looked up before the model
    files for the scenario's `model: NAME`."""
    text, is_text = _source(scenario)
    return _core.run_image(text, is_text, int(threads), _models(models))


def run(scenario, threads=0, models=None):
    """Runs `scenario` (a path or YAML text) and returns an xarray.Dataset,
    loaded into memory: the same variables, coordinates and attributes as the
    file `ketasim run` writes. threads=0: all available. `models`: an optional
    dict of model name -> YAML text (see run_bytes). Raises ScenarioError for
    a scenario or model that ketasim refuses."""
    import xarray as xr

    data = run_bytes(scenario, threads, models)
    with xr.open_dataset(_io.BytesIO(data), engine="h5netcdf") as ds:
        return ds.load()


def check(scenario, models=None):
    """Loads `scenario` (a path or YAML text) and its model and checks them,
    its `report` section included, without running anything. Returns the
    list of warnings; raises ScenarioError on the first error."""
    text, is_text = _source(scenario)
    return _core.check(text, is_text, _models(models))
