"""Applications built on the library, not part of it: the built-in demonstration
(:mod:`hnnsim.apps.demo`, ``hnnsim demo``) and the HNN paper's experiments
(:mod:`hnnsim.apps.experiment`, ``hnnsim experiment``). Nothing in ``hnnsim``,
``systems`` or ``integrators`` imports this package."""
