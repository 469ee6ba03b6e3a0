"""Evaluation: saved run / model folders on a store split, predictions and embeddings for new
recordings. The metrics and batched inference they share with training live in
:mod:`csbrain.engine`."""
