"""Feature derivation for scoring: the columns the models read, derived from profiles' set-based fact reads
(``profiles.facts``). See :mod:`scoring.features.aggregates`."""
