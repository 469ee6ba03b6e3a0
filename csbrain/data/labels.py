"""Labels of whole recordings (``labels.mode="recording"``): exact ids or glob patterns.

A key of ``labels.recording`` names a recording when it equals its id, or when it is a glob
pattern (``*``, ``?``, ``[...]``) matching it; keys matching one recording with different
labels are an error (never dict order), and ``prepare`` reports keys that match nothing.
"""

from __future__ import annotations

import fnmatch

from csbrain.data.prepconfig import LabelConfig
from csbrain.data.preprocess import RecordingError

__all__ = ["label_key_matches", "recording_label", "required_label"]


def label_key_matches(key: str, rec_id: str) -> bool:
    """Whether a ``labels.recording`` key names ``rec_id``: equal, or a glob pattern
    (``*``, ``?``, ``[...]``, e.g. ``*task-EC*``) that matches it (case-sensitive)."""
    if any(c in key for c in "*?["):
        return fnmatch.fnmatchcase(rec_id, key)
    return key == rec_id


def recording_label(rec_id: str, labels: LabelConfig) -> int | None:
    """Label of a whole recording: the value of the ``labels.recording`` key that names it.

    Keys match exactly or as glob patterns (:func:`label_key_matches`); None when no key
    matches. Keys matching with different labels are an error (never dict order).
    """
    hits = {k: int(v) for k, v in labels.recording.items() if label_key_matches(k, rec_id)}
    if len(set(hits.values())) > 1:
        raise RecordingError("no_labels", f"recording id {rec_id!r} matches labels.recording "
                             f"keys {sorted(hits)} with different labels; make the keys exact "
                             f"or the patterns disjoint")
    return next(iter(hits.values()), None)


def required_label(rec_id: str, labels: LabelConfig) -> int:
    """:func:`recording_label`, or ``RecordingError("no_labels")`` naming the keys."""
    label = recording_label(rec_id, labels)
    if label is None:
        raise RecordingError("no_labels", f"recording id {rec_id!r} matches none of the "
                             f"labels.recording keys {sorted(labels.recording)} (keys match "
                             f"the whole id, or are glob patterns such as '*task-EC*')")
    return label
