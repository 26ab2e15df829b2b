"""Hardware cost models: analytic, measured, lookup tables, predictors."""
