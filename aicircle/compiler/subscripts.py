"""Subscripts: which elements each equation computes and which elements each reference reads.

A subscripted variable is stored as one array whose leading axis runs over its
elements, flattened row-major over its dimensions (``Var[a1,b1], Var[a1,b2], ...``),
and whose last axis is the batch of parameter sets: shape ``(n_elements, n_sets)``.
Each equation of it (a *component*: Vensim may define a variable piece by piece,
``x[a] = ...``, ``x[b, c] = ...``, ``x[d] :EXCEPT: ...``) computes a *grid* of those
elements at once. A reference ``y[...]`` inside it becomes one gather
``y[index]`` whose integer index gives, for every element of the grid, the element
of ``y`` it reads (:meth:`Subscripts.index`); an array function (``SUM(y[d!])``)
adds the dimensions marked ``!`` as further axes of the grid and reduces over them.

The rules follow Vensim as PySD implements them: a subscript naming a dimension of
the equation's left-hand side reads the same element; a dimension mapped to one of
them (``d -> e``) reads the element in the same position; a subrange or superrange
of one of them reads the element of the same name; an element name reads that
element. The ranges themselves (subranges, copies ``a <-> b``, ranges built from
subranges) are resolved by PySD's own :class:`SubscriptManager`.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..errors import UnsupportedFeature


class Subscripts:
    """The subscript ranges of a model and the rules that resolve references to them."""

    def __init__(self, abstract_subscripts, source: str):
        from pysd.builders.python.subscripts import SubscriptManager

        self.source = source
        for sub in abstract_subscripts:
            if isinstance(sub.subscripts, dict):
                raise UnsupportedFeature(
                    f"{source}: subscript range read from a spreadsheet in '{sub.name}' is not "
                    f"supported by aicircle's compiler")
        self.manager = SubscriptManager(abstract_subscripts, None)
        self.ranges: dict[str, list[str]] = dict(self.manager.subscripts)
        self.mapping = {name: [m for m in maps if isinstance(m, str)]
                        for name, maps in self.manager.mapping.items()}
        self.by_clean = {_clean(name): name for name in self.ranges}
        self.all_elements = {e for elems in self.ranges.values() for e in elems}

    def element_value(self, clean: str):
        """An element used as a value: its position (from 1) in its main range, or None."""
        for main in self.manager.subranges:
            for i, e in enumerate(self.ranges[main], start=1):
                if _clean(e) == clean:
                    return float(i)
        return None

    def __bool__(self):
        return bool(self.ranges)

    def is_range(self, name: str) -> bool:
        return name in self.ranges

    def final_dims(self, lhs_list: list[list[str]], where: str) -> list[str]:
        """The dimensions of a variable defined by components with these left-hand sides."""
        try:
            return list(self.manager.make_merge_list(lhs_list, where))
        except (KeyError, TypeError, ValueError, IndexError) as err:
            raise UnsupportedFeature(
                f"{self.source}: subscripts {lhs_list} in '{where}' is not supported by aicircle's "
                f"compiler ({err})") from err

    def main_range(self, dim: str) -> str:
        """The range of which ``dim`` is a subrange (``dim`` itself for a main range)."""
        for name, subs in self.manager.subranges.items():
            if name == dim or dim in subs:
                return name
        elems = set(self.ranges[dim])
        for name in self.manager.subranges:
            if elems <= set(self.ranges[name]):
                return name
        return dim


def _clean(name: str) -> str:
    return "_".join(str(name).lower().replace("_", " ").split())


@dataclasses.dataclass
class Grid:
    """The elements one equation computes, plus the axes of any array function around it.

    ``shape`` is the grid's shape (``()`` for an unsubscripted equation, ``(m,)`` for
    one that computes ``m`` elements, plus one axis per ``!`` dimension inside an array
    function). ``lhs`` holds, for each left-hand-side position, its dimension name and
    the element of every grid point (a str array of ``shape``, broadcastable);
    ``bang`` the same for each ``!`` dimension.
    """

    shape: tuple
    lhs: list
    bang: dict
    positions: np.ndarray | None = None  # the grid's elements as flat indices into the variable

    @property
    def size(self):
        return self.shape[0] if self.shape else None

    def extend(self, dims: list[tuple[str, list[str]]]) -> "Grid":
        """This grid with one more trailing axis per ``(dim, elements)`` of an array function."""
        base = len(self.shape)
        extra = len(dims)
        shape = self.shape + tuple(len(e) for _, e in dims)
        lhs = [(d, np.asarray(a).reshape(np.shape(a) + (1,) * extra)) for d, a in self.lhs]
        bang = {d: np.asarray(a).reshape(np.shape(a) + (1,) * extra) for d, a in self.bang.items()}
        for i, (d, elems) in enumerate(dims):
            axis_shape = [1] * (base + extra)
            axis_shape[base + i] = len(elems)
            bang[d] = np.asarray(elems, dtype=object).reshape(axis_shape)
        return Grid(shape, lhs, bang, None)


def component_grid(subs: Subscripts, var_dims: list, lhs: list[str], excepts: list, where: str) -> Grid:
    """The grid of a component whose left-hand side is ``lhs`` (minus ``excepts``).

    ``var_dims`` is the variable's final ``[(dim, elements), ...]``.
    """
    coords = subs.manager.make_coord_dict(list(lhs))  # dim -> elements, in lhs order
    names = list(coords)
    lists = [list(coords[n]) for n in names]
    points = [()]
    for elems in lists:
        points = [p + (e,) for p in points for e in elems]
    for exc in excepts or []:
        exc_coords = subs.manager.make_coord_dict(list(exc))
        exc_sets = [set(v) for v in exc_coords.values()]
        if len(exc_sets) != len(lists):
            raise UnsupportedFeature(f"{subs.source}: EXCEPT {exc} in '{where}' is not supported by "
                                     f"aicircle's compiler")
        points = [p for p in points if not all(e in s for e, s in zip(p, exc_sets))]
    if not points:
        raise UnsupportedFeature(f"{subs.source}: an equation of no element in '{where}' is not "
                                 f"supported by aicircle's compiler")
    if len(lists) != len(var_dims):
        raise UnsupportedFeature(f"{subs.source}: subscripts {lhs} in '{where}' is not supported by "
                                 f"aicircle's compiler")
    m = len(points)
    arr = np.empty((m, len(lists)), dtype=object)
    for i, p in enumerate(points):
        arr[i] = p
    lhs_axes = [(names[j], arr[:, j]) for j in range(len(lists))]
    positions = flat_positions(subs, var_dims, [arr[:, j] for j in range(len(lists))], where)
    return Grid((m,), lhs_axes, {}, positions)


def flat_positions(subs: Subscripts, var_dims, element_arrays, where: str) -> np.ndarray:
    """Flat row-major indices into a variable of ``var_dims`` of the given element arrays."""
    flat = 0
    stride = 1
    strides = []
    for _, elems in reversed(var_dims):
        strides.append(stride)
        stride *= len(elems)
    strides.reverse()
    for (dim, elems), arr, st in zip(var_dims, element_arrays, strides):
        pos = {e: i for i, e in enumerate(elems)}
        try:
            idx = np.vectorize(pos.__getitem__, otypes=[np.intp])(np.asarray(arr, dtype=object))
        except KeyError as err:
            raise UnsupportedFeature(
                f"{subs.source}: element {err} outside '{dim}' in '{where}' is not supported by "
                f"aicircle's compiler") from None
        flat = flat + idx * st
    return np.asarray(flat, dtype=np.intp)


def resolve(subs: Subscripts, grid: Grid, name: str, where: str) -> np.ndarray:
    """The element that subscript ``name`` reads at each point of ``grid`` (a str array)."""
    if name.endswith("!"):
        dim = name[:-1]
        if dim not in grid.bang:
            raise UnsupportedFeature(f"{subs.source}: the subscript '{name}' outside an array function "
                                     f"in '{where}' is not supported by aicircle's compiler")
        return grid.bang[dim]
    if not subs.is_range(name):
        if name not in subs.all_elements:
            raise UnsupportedFeature(f"{subs.source}: unknown subscript '{name}' in '{where}' is not "
                                     f"supported by aicircle's compiler")
        return np.asarray(name, dtype=object)
    for dim, arr in grid.lhs:  # the same dimension as the left-hand side
        if dim == name:
            return arr
    for dim, arr in grid.lhs:  # a dimension mapped onto one of the left-hand side (positional)
        if dim in subs.mapping.get(name, ()) and len(subs.ranges[dim]) == len(subs.ranges[name]):
            pos = {e: i for i, e in enumerate(subs.ranges[dim])}
            target = subs.ranges[name]
            return np.vectorize(lambda e: target[pos[e]], otypes=[object])(arr)
    wanted = set(subs.ranges[name])
    for dim, arr in grid.lhs:  # a subrange or superrange: the element of the same name
        if set(np.ravel(arr)) <= wanted:
            return arr
    raise UnsupportedFeature(f"{subs.source}: the subscript '{name}' in '{where}', which matches no "
                             f"subscript of its left-hand side, is not supported by aicircle's compiler")


def index(subs: Subscripts, grid: Grid, var_dims, ref_subs: list[str], where: str):
    """Flat indices into a variable of ``var_dims`` read by ``var[ref_subs]`` at each grid point.

    Returns an intp array of ``grid.shape`` (a 0-d array for an unsubscripted grid).
    """
    if len(ref_subs) != len(var_dims):
        raise UnsupportedFeature(f"{subs.source}: a reference with {len(ref_subs)} subscripts to a "
                                 f"variable of {len(var_dims)} dimensions in '{where}' is not supported "
                                 f"by aicircle's compiler")
    arrays = [resolve(subs, grid, s, where) for s in ref_subs]
    flat = flat_positions(subs, var_dims, arrays, where)
    return np.broadcast_to(flat, grid.shape).copy() if grid.shape else flat


def size_of(var_dims) -> int:
    return math.prod(len(e) for _, e in var_dims)


def labels(var_dims) -> list[str]:
    """``"a,b"`` for every element of a variable of ``var_dims``, in storage order."""
    out = [""]
    for _, elems in var_dims:
        out = [f"{p},{e}" if p else str(e) for p in out for e in elems]
    return out
