"""Balance sheets and transactions flows (Godley tables) of any tagged model.

A model declares its accounts in its variables' comments, with tags in square
brackets (any model may use them; a model without them has empty accounts):

``[sector: S]``
    The stock belongs to sector ``S`` (a label: ``Lab``, ``Households``, ...).
    Informative for stocks that are not money or claims (users, capacity).
``[money: asset of H; liability of I]``
    A means of payment in the model's money unit, held by ``H`` and issued by
    ``I`` (outside money is a liability of the banks of the sector that stands
    for the rest of the world). The money flows are the terms of the money
    stocks' rate equations: each must leave one money stock and enter another.
``[claim: asset of H; liability of I]``
    A financial claim (debt, equity at cost, a payable): an asset of its
    holder ``H`` and a liability of its issuer ``I``.
``[memo: asset of H; liability of I]``
    An off-balance-sheet commitment (a contract backlog and the order book
    opposite it): shown below the balance sheet, outside net worth.
``[real: asset of H]``
    A non-financial asset of ``H`` in the money unit (capital at replacement
    cost).

A holder may be split between sectors by a variable of the model:
``asset of Builder by Builder Contract Share, Cloud by the rest`` gives the
builders that share of the value and the clouds the rest (shares are read from
the run). A tag may stand on a stock or on an auxiliary (a valuation).

From these, :func:`balance_sheet` builds at every saved time the matrix
whose rows are the real assets, each money stock and claim, ``Net worth`` and
the memo items, and whose columns are the sectors: each claim is ``+value``
for its holder and ``-value`` for its issuer, so every money and claim row sums
to zero, and net worth is assets less liabilities. :func:`transactions_flow`
builds the matrix of money flows: one row per flow, ``+value`` for the sector
that receives it and ``-value`` for the one that pays it, and one row per money
stock for its change (``-`` for its holder's use of funds, ``+`` for its
issuer), so that every row and every column sums to zero.

>>> import aicircle as ac
>>> from aicircle import accounts
>>> model = ac.load(ac.shipped_model())                      # doctest: +SKIP
>>> run = model.simulate(return_columns=accounts.variables(model))  # doctest: +SKIP
>>> accounts.balance_sheet(model, run).sel(time=2030.0).to_pandas()  # doctest: +SKIP
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from .compiler import clean_name
from .errors import InvalidInput, ModelReadError
from .reader import read

__all__ = ["Accounts", "Flow", "Item", "balance_sheet", "read_accounts", "transactions_flow",
           "variables"]

KINDS = ("money", "claim", "memo", "real")
_TAG = re.compile(r"\[(sector|" + "|".join(KINDS) + r"):\s*([^\]]*)\]")
_REST = "the rest"


@dataclass(frozen=True)
class Item:
    """One row of the balance sheet: a tagged variable.

    Attributes
    ----------
    name : str
        The model variable (a stock or an auxiliary), in the money unit.
    kind : {"money", "claim", "memo", "real"}
    holders : tuple of (str, str or None)
        ``(sector, share variable)``; the share is ``None`` for a single
        holder and for the holder of ``the rest``.
    issuer : str or None
        The sector whose liability it is (``None`` for a real asset).
    """

    name: str
    kind: str
    holders: tuple
    issuer: str | None


@dataclass(frozen=True)
class Flow:
    """A money flow: it leaves ``source`` (a money stock of ``payer``) and enters ``sink``."""

    name: str
    source: str
    sink: str
    payer: str
    receiver: str


@dataclass(frozen=True)
class Accounts:
    """The accounts a model declares in its comments (see the module's docstring).

    Attributes
    ----------
    sectors : tuple of str
        The sectors of the matrices (those that hold or issue an item), in
        the order the stocks' ``[sector: ...]`` tags first name them, then
        any other in order of first appearance.
    stock_sectors : dict
        Stock -> the sector its ``[sector: ...]`` tag names.
    items : tuple of Item
        Real assets, money, claims and memo items, in file order.
    flows : tuple of Flow
        Every money flow, once, in the order of the money stocks' equations.
    """

    sectors: tuple
    stock_sectors: dict
    items: tuple
    flows: tuple

    def variables(self) -> list:
        """Every variable the matrices read from a run (for ``return_columns``)."""
        names = [item.name for item in self.items]
        names += [share for item in self.items for _, share in item.holders if share]
        names += [flow.name for flow in self.flows]
        return list(dict.fromkeys(names))


def _parse_holders(text: str, where: str) -> tuple:
    holders = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            raise ModelReadError(f"{where}: an empty holder in 'asset of {text}'")
        sector, _, share = part.partition(" by ")
        sector, share = sector.strip(), share.strip()
        holders.append((sector, None if not share or share == _REST else share))
    if len(holders) > 1:
        rest = [h for h in holders if h[1] is None]
        if len(rest) != 1:
            raise ModelReadError(f"{where}: a holder split between sectors needs exactly one "
                                 f"holder 'by the rest', got 'asset of {text}'")
    return tuple(holders)


def _parse_item(name: str, kind: str, body: str) -> Item:
    where = f"'{name}' [{kind}: {body}]"
    fields = {}
    for part in (p.strip() for p in body.split(";")):
        key, _, value = part.partition(" of ")
        if key.strip() not in ("asset", "liability") or not value.strip():
            raise ModelReadError(f"{where}: expected 'asset of SECTOR' and, for {kind}, "
                                 f"'liability of SECTOR', got {part!r}")
        fields[key.strip()] = value.strip()
    if "asset" not in fields:
        raise ModelReadError(f"{where}: every liability needs a holder ('asset of SECTOR')")
    if kind == "real":
        if "liability" in fields:
            raise ModelReadError(f"{where}: a real asset is nobody's liability")
        issuer = None
    else:
        if "liability" not in fields:
            raise ModelReadError(f"{where}: a {kind} item needs an issuer ('liability of SECTOR')")
        issuer = fields["liability"]
    return Item(name, kind, _parse_holders(fields["asset"], where), issuer)


def _signed_references(ast, names) -> list | None:
    """[(name, +1 or -1)] of an equation that is a signed sum of plain references, else None."""
    kind = type(ast).__name__
    if kind == "ReferenceStructure" and ast.subscripts is None and ast.reference in names:
        return [(names[ast.reference], 1)]
    if kind != "ArithmeticStructure":
        return None
    if list(ast.operators) == ["negative"]:
        inner = _signed_references(ast.arguments[0], names)
        return None if inner is None else [(n, -s) for n, s in inner]
    if not set(ast.operators) <= {"+", "-"}:
        return None
    out = []
    for sign, argument in zip([1] + [1 if op == "+" else -1 for op in ast.operators], ast.arguments):
        inner = _signed_references(argument, names)
        if inner is None:
            return None
        out += [(n, sign * s) for n, s in inner]
    return out


def _money_terms(model, abstract, money) -> dict:
    """Money stock -> [(flow, +1 for an inflow or -1 for an outflow)].

    Read from the stocks' rates; a flow that does not both leave one money stock and
    enter another, and whose own equation is a signed sum of variables, is replaced
    by those variables (so that a model whose XMILE export gathered a stock's terms
    into one generated flow, like ``Cloud Cash other flows = Borrowing - Debt
    Repayment``, books the same flows as its Vensim original).
    """
    structure = model.stock_flows()
    for stock in money:
        if "(expression)" in structure[stock]["in"] + structure[stock]["out"]:
            raise ModelReadError(f"money stock '{stock}': its rate must be a sum of named flows")
    signed = {s: [(f, 1) for f in structure[s]["in"]] + [(f, -1) for f in structure[s]["out"]]
              for s in money}
    names = {clean_name(v): v for v in model.variables}
    equations = {el.name: el.components[0].ast for section in abstract.sections
                 if section.type != "macro" for el in section.elements if len(el.components) == 1}
    while True:
        unmatched = [f for f in dict.fromkeys(n for terms in signed.values() for n, _ in terms)
                     if sum((f, -1) in signed[s] for s in money) != 1
                     or sum((f, 1) in signed[s] for s in money) != 1]
        expansions = {f: _signed_references(equations[f], names) for f in unmatched if f in equations}
        expansions = {f: terms for f, terms in expansions.items() if terms and terms != [(f, 1)]}
        if not expansions:
            return signed
        for stock, terms in signed.items():
            signed[stock] = [(n, s * s2) for f, s in terms
                             for n, s2 in (expansions.get(f) or [(f, 1)])]


def read_accounts(model) -> Accounts:
    """Read the accounts that ``model`` declares in its comments.

    Parameters
    ----------
    model : aicircle.Model

    Returns
    -------
    Accounts

    Raises
    ------
    ModelReadError
        A tag is malformed, a liability has no holder, a money stock has more
        than one holder, or a money flow does not leave exactly one money
        stock and enter exactly one other.
    """
    abstract = read(model.path)
    stocks = set(model.stocks)
    items, stock_sectors, order = [], {}, []
    for section in abstract.sections:
        if section.type == "macro":
            continue
        for element in section.elements:
            for kind, body in _TAG.findall(element.documentation or ""):
                if kind == "sector":
                    if element.name in stocks:
                        stock_sectors[element.name] = body.strip()
                    continue
                item = _parse_item(element.name, kind, body.strip())
                items.append(item)
                order += [h for h, _ in item.holders] + ([item.issuer] if item.issuer else [])
    # the sectors that hold or issue something, in the order their stocks' tags name them
    named = [s for s in dict.fromkeys(stock_sectors.values()) if s in order]
    sectors = tuple(dict.fromkeys(named + order))
    known = set(model.variables)
    for item in items:
        missing = [n for n in [item.name, *(s for _, s in item.holders if s)] if n not in known]
        if missing:
            raise ModelReadError(f"{model.path.name}: the accounts name unknown variables {missing}")
    money = {item.name: item for item in items if item.kind == "money"}
    for item in money.values():
        if len(item.holders) != 1:
            raise ModelReadError(f"money stock '{item.name}' must have one holder")
        if item.name not in stocks:
            raise ModelReadError(f"money '{item.name}' must be a stock")
    flows = []
    if money:
        signed = _money_terms(model, abstract, money)
        for flow in dict.fromkeys(name for terms in signed.values() for name, _ in terms):
            sources = [s for s in money if (flow, -1) in signed[s]]
            sinks = [s for s in money if (flow, 1) in signed[s]]
            if len(sources) != 1 or len(sinks) != 1 or sources == sinks:
                raise ModelReadError(f"money flow '{flow}' leaves {sources} and enters {sinks}: "
                                     f"it must leave one money stock and enter another")
            flows.append(Flow(flow, sources[0], sinks[0], money[sources[0]].holders[0][0],
                              money[sinks[0]].holders[0][0]))
    return Accounts(sectors, stock_sectors, tuple(items), tuple(flows))


def variables(model) -> list:
    """Every variable :func:`balance_sheet` and :func:`transactions_flow` read from a run."""
    return read_accounts(model).variables()


# ---------------------------------------------------------------------------- the matrices

def _values(run, accounts: Accounts):
    """(name -> array of shape (..., time), leading dims, coords) from a DataFrame or Dataset."""
    names = accounts.variables()
    if isinstance(run, pd.DataFrame):
        missing = [n for n in names if n not in run.columns]
        get = lambda n: run[n].to_numpy(dtype=float)  # noqa: E731
        dims, coords = ("time",), {"time": run.index.to_numpy(dtype=float)}
    elif isinstance(run, xr.Dataset):
        missing = [n for n in names if n not in run.data_vars]
        get = lambda n: run[n].transpose("set", "time").to_numpy().astype(float)  # noqa: E731
        dims, coords = ("set", "time"), {"set": run["set"].values, "time": run["time"].values}
    else:
        raise InvalidInput(f"run must be a DataFrame (one run) or an xarray Dataset (a batch), "
                           f"got {type(run).__name__}")
    if missing:
        raise InvalidInput(f"the run lacks {missing}: simulate with "
                           f"return_columns=accounts.variables(model)")
    return {n: get(n) for n in names}, dims, coords


def _accounts(model_or_accounts) -> Accounts:
    if isinstance(model_or_accounts, Accounts):
        return model_or_accounts
    return read_accounts(model_or_accounts)


def _holdings(item: Item, values: dict) -> list:
    """[(sector, value array)] of an item's holders."""
    value = values[item.name]
    shares = [values[s] for _, s in item.holders if s]
    out = []
    for sector, share in item.holders:
        if share is not None:
            out.append((sector, value * values[share]))
        elif shares:
            out.append((sector, value * (1.0 - sum(shares))))
        else:
            out.append((sector, value))
    return out


def balance_sheet(model, run) -> xr.DataArray:
    """The balance-sheet matrix at every saved time of ``run``.

    Parameters
    ----------
    model : aicircle.Model or Accounts
    run : pandas.DataFrame or xarray.Dataset
        A run (``simulate``) or a batch (``simulate_batch``) that returns
        :func:`variables`.

    Returns
    -------
    xarray.DataArray, dims ("time", "row", "sector") or ("set", "time", "row", "sector")
        Rows: the real assets, each money stock and claim, ``Net worth``, and
        the memo items (named ``memo: NAME``); columns: the sectors, in $ of
        the model's money unit. A holder's asset is ``+``, an issuer's
        liability ``-``; ``Net worth`` is the sum of a sector's real assets,
        money and claims (assets less liabilities). Each money and claim row
        (and each memo row) sums to zero across sectors.
    """
    accounts = _accounts(model)
    values, dims, coords = _values(run, accounts)
    shape = next(iter(values.values())).shape if values else (len(coords["time"]),)
    col = {s: k for k, s in enumerate(accounts.sectors)}
    booked = [i for i in accounts.items if i.kind in ("real", "money", "claim")]
    booked.sort(key=lambda i: i.kind != "real")  # real assets first, then money and claims
    memo = [i for i in accounts.items if i.kind == "memo"]
    rows = [i.name for i in booked] + ["Net worth"] + [f"memo: {i.name}" for i in memo]
    out = np.zeros(shape + (len(rows), len(accounts.sectors)))
    for r, item in enumerate(booked):
        for sector, held in _holdings(item, values):
            out[..., r, col[sector]] += held
        if item.issuer is not None:
            out[..., r, col[item.issuer]] -= values[item.name]
    out[..., len(booked), :] = out[..., :len(booked), :].sum(axis=-2)
    for r, item in enumerate(memo, start=len(booked) + 1):
        for sector, held in _holdings(item, values):
            out[..., r, col[sector]] += held
        out[..., r, col[item.issuer]] -= values[item.name]
    return xr.DataArray(out, dims=dims + ("row", "sector"),
                        coords={**coords, "row": rows, "sector": list(accounts.sectors)},
                        name="balance sheet")


def transactions_flow(model, run) -> xr.DataArray:
    """The transactions-flow matrix at every saved time of ``run``.

    Parameters
    ----------
    model : aicircle.Model or Accounts
    run : pandas.DataFrame or xarray.Dataset
        As for :func:`balance_sheet`.

    Returns
    -------
    xarray.DataArray, dims ("time", "row", "sector") or ("set", "time", "row", "sector")
        One row per money flow (``+`` for the sector whose money stock it
        enters, ``-`` for the one it leaves), then one row ``change in NAME``
        per money stock: ``-`` its rate of change for its holder (a use of
        funds) and ``+`` for its issuer. Every row and every column sums to
        zero; flows within a sector appear with ``+`` and ``-`` in its column.
    """
    accounts = _accounts(model)
    values, dims, coords = _values(run, accounts)
    shape = (len(coords["set"]), len(coords["time"])) if "set" in coords else (len(coords["time"]),)
    col = {s: k for k, s in enumerate(accounts.sectors)}
    money = [i for i in accounts.items if i.kind == "money"]
    rows = [f.name for f in accounts.flows] + [f"change in {i.name}" for i in money]
    out = np.zeros(shape + (len(rows), len(accounts.sectors)))
    change = {i.name: np.zeros(shape) for i in money}
    for r, flow in enumerate(accounts.flows):
        value = values[flow.name]
        out[..., r, col[flow.receiver]] += value
        out[..., r, col[flow.payer]] -= value
        change[flow.sink] = change[flow.sink] + value
        change[flow.source] = change[flow.source] - value
    for r, item in enumerate(money, start=len(accounts.flows)):
        out[..., r, col[item.holders[0][0]]] -= change[item.name]
        out[..., r, col[item.issuer]] += change[item.name]
    return xr.DataArray(out, dims=dims + ("row", "sector"),
                        coords={**coords, "row": rows, "sector": list(accounts.sectors)},
                        name="transactions flow")
