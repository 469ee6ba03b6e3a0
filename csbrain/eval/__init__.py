"""Evaluation: scikit-learn metrics per task, evaluation of run / model folders on a store,
prediction and embeddings for new recordings."""
