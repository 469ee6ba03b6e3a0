"""The paper's 16-dataset benchmark: recipes, converters, splits, runs and reports."""
