"""The reference models of the aggregates task (:mod:`baselines.aggregates.models`)."""
