"""External data: Vensim's GET XLS/DIRECT DATA, CONSTANTS and LOOKUPS, read once when a model is loaded.

The files are read with PySD's own readers (:mod:`pysd.py_backend.external`:
pandas for cells given by address, openpyxl for named ranges), so that every
value, every ordering of a series and every filled-in missing value is the one
PySD's run uses. Nothing in the files is executed: openpyxl reads the values
spreadsheets store (``data_only``), never their formulas, and only spreadsheet
and text-table files are opened. Each read returns plain numpy arrays; the
compiled model holds no reference to a file. A file that is missing or cannot
be read, a sheet or a named range that does not exist, or cells that hold no
numbers raise :class:`~aicircle.errors.ModelReadError` naming the model, the
variable, the file, the sheet and the cell.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import numpy as np

from ..errors import ModelReadError

#: What the readers open: spreadsheets (pandas/openpyxl; .xls through xlrd) and text tables.
EXTENSIONS = (".xlsx", ".xlsm", ".xls", ".ods", ".csv", ".tab", ".txt")

#: Vensim's keywords of a data variable (``x :HOLD BACKWARD: := ...``), as PySD names them.
DATA_METHODS = ("interpolate", "raw", "hold_backward", "look_forward")


# pandas' readers of spreadsheets, as PySD 3.14 was written for (and as pandas 2 chose them)
_ENGINES = ("io.excel.xlsx.reader", "openpyxl", "io.excel.xlsm.reader", "openpyxl",
            "io.excel.xls.reader", "xlrd", "io.excel.ods.reader", "odf")


class Reader:
    """Reads the external data of one model (relative file names are relative to ``root``)."""

    def __init__(self, source: str, root: Path):
        self.source = source
        self.root = Path(root)

    def _check_file(self, structure, where: str) -> None:
        name = str(structure.file)
        if name.startswith("?"):
            raise ModelReadError(
                f"{self.source}: '{where}' reads the indirect file reference '{name}' (a Vensim "
                f"GET ... with '?'); name the file itself")
        suffix = Path(name).suffix.lower()
        if suffix not in EXTENSIONS:
            raise ModelReadError(
                f"{self.source}: '{where}' reads '{name}', which is not a spreadsheet or a text "
                f"table ({', '.join(EXTENSIONS)})")

    def _fail(self, err, structure, where, kind):
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
        if lines and lines[0] == where:
            lines = lines[1:]
        reason = "; ".join(ln.replace("\t", " ") for ln in lines) or type(err).__name__
        return ModelReadError(
            f"{self.source}: '{where}' reads {kind} from file '{structure.file}', sheet "
            f"'{structure.tab}', cell '{structure.cell}' and cannot: {reason}")

    @contextlib.contextmanager
    def _reading(self, structure, where, kind):
        from pysd.py_backend.external import Excels

        import pandas as pd

        self._check_file(structure, where)
        try:
            # the engines PySD's pandas used (pandas 3 warns that its default will change)
            with pd.option_context(*_ENGINES), warnings.catch_warnings():
                # pandas 3 deprecates xlrd, the only reader of .xls files it has without calamine
                warnings.filterwarnings("ignore", message="The xlrd engine is deprecated")
                yield
        except ModelReadError:
            raise
        except Exception as err:  # noqa: BLE001 - whatever pandas/openpyxl/xlrd raise on a bad file
            raise self._fail(err, structure, where, kind) from err
        finally:
            Excels.clean()  # PySD caches files by name: the next load must read them afresh

    def constants(self, structure, coords: dict, where: str) -> np.ndarray:
        """GET CONSTANTS over ``coords`` (dim -> elements): the values, flat in row-major order."""
        from pysd.py_backend.external import ExtConstant

        with self._reading(structure, where, "constants"):
            obj = ExtConstant(structure.file, structure.tab, structure.cell, dict(coords), self.root,
                              dict(coords), where)
            obj.initialize()
            data = obj.data
            values = np.asarray(data.transpose(*coords).values if coords else data, dtype=float)
        return values.ravel()

    def series(self, structure, coords: dict, where: str, method: str | None = None):
        """GET DATA (``method`` given) or GET LOOKUPS over ``coords``: ``(xs, ys)``.

        ``xs`` shape (K,) increasing; ``ys`` shape (K,) for no ``coords``, else
        (K, n_elements) with the elements flat in row-major order.
        """
        from pysd.py_backend.external import ExtData, ExtLookup

        kind = "lookups" if method is None else "data"
        with self._reading(structure, where, kind):
            if method is None:
                obj = ExtLookup(structure.file, structure.tab, structure.x_row_or_col, structure.cell,
                                dict(coords), self.root, dict(coords), where)
                axis = "lookup_dim"
            else:
                obj = ExtData(structure.file, structure.tab, structure.time_row_or_col, structure.cell,
                              method, dict(coords), self.root, dict(coords), where)
                axis = "time"
            obj.initialize()
            data = obj.data.transpose(axis, *coords)
            xs = np.asarray(data[axis].values, dtype=float)
            ys = np.asarray(data.values, dtype=float)
        if coords:
            ys = ys.reshape(len(xs), -1)
        if xs.size == 0:
            raise ModelReadError(f"{self.source}: '{where}' reads no {kind} from file '{structure.file}', "
                                 f"sheet '{structure.tab}', cell '{structure.cell}'")
        return xs, ys
