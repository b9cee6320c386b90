"""The capital-circle study: one client of the aicircle toolkit (docs/design.md §1).

The toolkit (``aicircle.*``) serves any model and never imports this package;
the study fills the toolkit's contracts for ``models/aicircle.mdl``:

- :mod:`~aicircle.study.outcomes`: what a bust is (classifiers filling
  :class:`aicircle.tipping.Classifier`), the horizons, the names the study reads;
- :mod:`~aicircle.study.scenarios`: the named scenarios, whose inputs are the
  ``switches=`` the toolkit never calibrates or varies;
- :mod:`~aicircle.study.observables`: the vocabulary of the 17 observables the
  shipped targets are written in;
- :mod:`~aicircle.study.calibration`: the shipped-calibration policy (targets,
  switches, the actuals mask, the shipped results);
- :mod:`~aicircle.study.ensemble`: the predictive ensemble, bust probabilities,
  structural alternatives;
- :mod:`~aicircle.study.early_warning`: the early-warning indicators before its busts;
- :mod:`~aicircle.study.report`: the study's report (``aicircle report``).
"""

from . import calibration, early_warning, ensemble, observables, outcomes, scenarios

__all__ = ["calibration", "early_warning", "ensemble", "observables", "outcomes", "scenarios"]
