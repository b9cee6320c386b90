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

A model is untrusted input, so the file it names is checked before a reader
sees it (:meth:`Reader._open`): the name is resolved (symlinks followed) and
must lie in the model's folder or a folder the user named (``data_dirs``);
the resolved file must be a regular file with a spreadsheet or text-table
suffix, of at most :data:`MAX_DATA_FILE_BYTES` (counted as read); a zipped
spreadsheet must unpack to at most :data:`MAX_UNPACKED_BYTES` and
:data:`MAX_CELLS` cells (an .ods file's repeated rows and columns counted as pandas
expands them), estimated from the archive before pandas or openpyxl
open it; a text table's separator is one character, taken literally. The
readers then read a private copy of the bytes checked. No refusal shows what
a file holds or where a symlink leads.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import stat
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np

from .._io import read_capped
from ..errors import ModelReadError

#: What the readers open: spreadsheets (pandas/openpyxl; .xls through xlrd) and text tables.
EXTENSIONS = (".xlsx", ".xlsm", ".xls", ".ods", ".csv", ".tab", ".txt")

#: The largest data file read (bytes, counted as they are read): a model's data is a few
#: tables; pandas holds a text table of this size in about 40 times as much memory.
MAX_DATA_FILE_BYTES = 32 * 2**20
#: What a zipped spreadsheet (.xlsx, .xlsm, .ods) may unpack to, by its archive's directory.
MAX_UNPACKED_BYTES = 256 * 2**20
#: The cells pandas may build from a spreadsheet's sheets (it fills the gaps between
#: the cells a sheet names, up to its last row and column): 4 million is ~300 MB of objects.
MAX_CELLS = 4_000_000
_ZIPPED = (".xlsx", ".xlsm", ".ods")
_TEXT = (".csv", ".tab", ".txt")
_ZIP_MEMBERS = 10_000
# a cell or row reference (r="AB12", r="12") and a sheet's declared size (<dimension ref="A1:AB12"/>)
_REF = re.compile(rb'\br="([A-Z]{0,3})([0-9]{1,7})"')
_DIMENSION = re.compile(rb'<(?:\w+:)?dimension\b[^>]*?\bref="[A-Z]*[0-9]*:?([A-Z]{0,3})([0-9]{0,7})"')
_CELL = re.compile(rb"<(?:\w+:)?c[\s/>]")

#: Vensim's keywords of a data variable (``x :HOLD BACKWARD: := ...``), as PySD names them.
DATA_METHODS = ("interpolate", "raw", "hold_backward", "look_forward")


# pandas' readers of spreadsheets, as PySD 3.14 was written for (and as pandas 2 chose them)
_ENGINES = ("io.excel.xlsx.reader", "openpyxl", "io.excel.xlsm.reader", "openpyxl",
            "io.excel.xls.reader", "xlrd", "io.excel.ods.reader", "odf")


def _column_number(letters: bytes) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ch - 64
    return n


def _sheet_cells(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> int:
    """Cells pandas would build from one sheet: its last row times its last column, at least
    the cells it holds (read streaming; the archive's sizes already bound what is read)."""
    rows = cols = cells = 0
    tail = b""
    with zf.open(info) as f:
        while True:
            block = f.read(2**20)
            if not block:
                break
            text = tail + block
            for pattern in (_REF, _DIMENSION):
                for m in pattern.finditer(text):
                    if m.group(1):
                        cols = max(cols, _column_number(m.group(1)))
                    if m.group(2):
                        rows = max(rows, int(m.group(2)))
            cells += len(_CELL.findall(text))
            tail = text[-64:]  # a reference cut by the block's end is read whole with the next one
            cells -= len(_CELL.findall(tail))
    cells += len(_CELL.findall(tail))
    return max(rows * cols, cells)


_ODS = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"


def _ods_cells(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> int:
    """Cells pandas would build from an OpenDocument spreadsheet's ``content.xml``: each row's
    cells times its ``number-rows-repeated``, each cell counted ``number-columns-repeated``
    times (pandas expands both; read streaming, elements dropped as they end)."""
    from xml.etree import ElementTree

    row, col = f"{{{_ODS}}}table-row", f"{{{_ODS}}}table-cell"
    covered = f"{{{_ODS}}}covered-table-cell"
    rows_repeated, cols_repeated = f"{{{_ODS}}}number-rows-repeated", f"{{{_ODS}}}number-columns-repeated"
    total = in_row = 0
    with zf.open(info) as f:
        for event, el in ElementTree.iterparse(f, events=("start", "end")):
            if event == "start" and el.tag in (col, covered):
                in_row += int(el.get(cols_repeated, "1") or 1)
            elif event == "end" and el.tag == row:
                total += int(el.get(rows_repeated, "1") or 1) * in_row
                in_row = 0
                el.clear()
            if total > MAX_CELLS:
                break
    return total


class Reader:
    """Reads the external data of one model (relative file names are relative to ``root``).

    ``data_dirs``: folders besides ``root`` that data files may lie in.
    """

    def __init__(self, source: str, root: Path, data_dirs=()):
        self.source = source
        self.root = Path(root)
        self.allowed = [Path(os.path.realpath(d)) for d in (self.root, *data_dirs)]

    def _refuse(self, structure, where: str, why: str) -> ModelReadError:
        return ModelReadError(f"{self.source}: '{where}' reads '{structure.file}', {why}")

    def _resolve(self, structure, where: str, kind: str) -> Path:
        """The file a data function names, resolved and checked (see the module docstring)."""
        name = str(structure.file)
        if name.startswith("?"):
            raise ModelReadError(
                f"{self.source}: '{where}' reads the indirect file reference '{name}' (a Vensim "
                f"GET ... with '?'); name the file itself")
        written = Path(name)
        resolved = Path(os.path.realpath(written if written.is_absolute() else self.root / written))
        # where it leads is checked before whether it exists: no answer tells what lies outside
        if not any(resolved.is_relative_to(folder) for folder in self.allowed):
            folders = " or a folder given with --data-dir (data_dirs=)" if len(self.allowed) == 1 else \
                ", nor in the folders given with --data-dir (data_dirs=)"
            raise self._refuse(structure, where, f"which is not in the model's folder{folders}: a model "
                                                 f"reads data only from there")
        if resolved.suffix.lower() not in EXTENSIONS:
            raise self._refuse(structure, where, f"which is not a spreadsheet or a text table "
                                                 f"({', '.join(EXTENSIONS)}; checked on the file it leads to)")
        try:
            mode = os.stat(resolved).st_mode
        except FileNotFoundError:
            raise self._fail("the file is not found", structure, where, kind) from None
        except OSError as err:
            raise self._refuse(structure, where, f"which cannot be read ({err.strerror})") from None
        if not stat.S_ISREG(mode):
            raise self._refuse(structure, where, "which is not a regular file (a folder, device or FIFO)")
        return resolved

    def _separator(self, structure, where: str, suffix: str) -> str:
        """The text table's separator as PySD takes it, one character, literal (never a pattern)."""
        tab = str(structure.tab)
        if suffix not in _TEXT or not tab or tab[0].isalnum():
            return tab
        if len(tab) != 1:
            raise self._refuse(structure, where, f"with the separator {tab[:20]!r}: a separator is one "
                                                 f"character, taken literally")
        return tab

    def _check_zip(self, data: bytes, structure, where: str) -> None:
        """Refuse a zipped spreadsheet that would unpack to too much, before pandas/openpyxl open it."""
        try:
            zf = zipfile.ZipFile(io.BytesIO(data))
        except (zipfile.BadZipFile, ValueError):
            return  # not a zip: the reader says it is not a spreadsheet
        with zf:
            infos = zf.infolist()
            if len(infos) > _ZIP_MEMBERS:
                raise self._refuse(structure, where, f"a spreadsheet of {len(infos)} archive members (at most "
                                                     f"{_ZIP_MEMBERS})")
            unpacked = sum(i.file_size for i in infos)
            if unpacked > MAX_UNPACKED_BYTES:
                raise self._refuse(structure, where, f"a spreadsheet that unpacks to {unpacked / 2**20:.0f} MiB, "
                                                     f"more than a data file may (at most "
                                                     f"{MAX_UNPACKED_BYTES // 2**20} MiB)")
            try:
                cells = sum(_sheet_cells(zf, i) for i in infos
                            if i.filename.startswith("xl/worksheets/") and i.filename.endswith(".xml"))
                cells += sum(_ods_cells(zf, i) for i in infos if i.filename == "content.xml")
            except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError, ValueError,
                    SyntaxError) as err:  # ElementTree's ParseError is a SyntaxError
                raise self._refuse(structure, where, f"a spreadsheet whose archive is damaged "
                                                     f"({type(err).__name__})") from None
            if cells > MAX_CELLS:
                raise self._refuse(structure, where, f"a spreadsheet of about {cells:.3g} cells (its last row "
                                                     f"times its last column), more than a data file may "
                                                     f"(at most {MAX_CELLS:.3g})")

    def _fail(self, err, structure, where, kind, local=None):
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
        if lines and lines[0] == where:
            lines = lines[1:]
        reason = "; ".join(ln.replace("\t", " ") for ln in lines) or type(err).__name__
        if local is not None:  # the private copy is named as the model names the file
            reason = reason.replace(str(local), str(structure.file))
        return ModelReadError(
            f"{self.source}: '{where}' reads {kind} from file '{structure.file}', sheet "
            f"'{structure.tab}', cell '{structure.cell}' and cannot: {reason}")

    @contextlib.contextmanager
    def _reading(self, structure, where, kind):
        """Yield ``(file, tab)`` for PySD's reader: a private copy of the checked file and its
        sheet or separator; whatever the reader raises becomes a ModelReadError."""
        from pysd.py_backend.external import Excels

        import pandas as pd

        resolved = self._resolve(structure, where, kind)
        suffix = resolved.suffix.lower()
        tab = self._separator(structure, where, suffix)
        data = read_capped(resolved, MAX_DATA_FILE_BYTES, f"{self.source}: '{where}' reads {kind} from file "
                           f"'{structure.file}'", error=ModelReadError, regular=True)
        if suffix in _ZIPPED:
            self._check_zip(data, structure, where)
        folder = Path(tempfile.mkdtemp(prefix="aicircle-data-"))
        local = folder / f"data{suffix}"
        try:
            local.write_bytes(data)
            # the engines PySD's pandas used (pandas 3 warns that its default will change)
            with pd.option_context(*_ENGINES), warnings.catch_warnings():
                # pandas 3 deprecates xlrd, the only reader of .xls files it has without calamine
                warnings.filterwarnings("ignore", message="The xlrd engine is deprecated")
                yield local, tab
        except ModelReadError:
            raise
        except Exception as err:  # noqa: BLE001 - whatever pandas/openpyxl/xlrd raise on a bad file
            raise self._fail(err, structure, where, kind, local) from err
        finally:
            Excels.clean()  # PySD caches files by name: the next load must read them afresh
            shutil.rmtree(folder, ignore_errors=True)

    def constants(self, structure, coords: dict, where: str) -> np.ndarray:
        """GET CONSTANTS over ``coords`` (dim -> elements): the values, flat in row-major order."""
        from pysd.py_backend.external import ExtConstant

        with self._reading(structure, where, "constants") as (file, tab):
            obj = ExtConstant(file, tab, structure.cell, dict(coords), self.root, dict(coords), where)
            obj.initialize()
            data = obj.data
            values = np.asarray(data.transpose(*coords).values if coords else data, dtype=float)
        bad = int(np.sum(~np.isfinite(values)))
        if bad:  # an empty or non-numeric cell: PySD reads NaN, and the run would stop as "diverging"
            raise self._refuse(structure, where, f"{bad} of the {values.size} cells from '{structure.cell}' on "
                                                 f"hold no number")
        return values.ravel()

    def series(self, structure, coords: dict, where: str, method: str | None = None):
        """GET DATA (``method`` given) or GET LOOKUPS over ``coords``: ``(xs, ys)``.

        ``xs`` shape (K,) increasing; ``ys`` shape (K,) for no ``coords``, else
        (K, n_elements) with the elements flat in row-major order.
        """
        from pysd.py_backend.external import ExtData, ExtLookup

        kind = "lookups" if method is None else "data"
        with self._reading(structure, where, kind) as (file, tab):
            if method is None:
                obj = ExtLookup(file, tab, structure.x_row_or_col, structure.cell, dict(coords), self.root,
                                dict(coords), where)
                axis = "lookup_dim"
            else:
                obj = ExtData(file, tab, structure.time_row_or_col, structure.cell, method, dict(coords),
                              self.root, dict(coords), where)
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
