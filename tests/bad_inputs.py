"""The bad-input catalogue: one row per case, run by ``tests/test_bad_inputs.py`` and rendered
as the troubleshooting table ``docs/troubleshooting.md`` (``python -m tests.bad_inputs``).

A row: the command (a ``csbrain`` subcommand, or ``api`` for a Python call), its arguments
(``{name}`` fields are files of the test workspace, ``{tmp}`` a fresh folder per case), the
expected exit status (API: the exception type), a phrase the message must contain, the paths
that must not exist afterwards, and what a user should do (the table's last column).
"""

from __future__ import annotations

from dataclasses import dataclass

#: Options that keep the training commands tiny.
TINY = "--set model.preset=tiny --set model.n_layers=1 --set progress=false"


@dataclass(frozen=True)
class Case:
    """One bad input.

    ``code`` is the exit status of a command (1: nothing came out of the data, 2: a one-line
    user error) or, for ``api`` rows, the exception type the call raises. ``setup``: commands
    run first (they must succeed). ``absent``: a phrase the message must not contain.
    ``known_gap``: the case shows a bug not fixed yet (the test
    is a strict xfail, so it fails once fixed and the mark is removed).
    """

    command: str
    args: str
    code: int | str
    phrase: str
    fix: str
    leaves: tuple[str, ...] = ()
    setup: tuple[str, ...] = ()
    absent: str = ""
    known_gap: str = ""

    @property
    def id(self) -> str:
        return f"{self.command}:{self.phrase[:40]}"


P = "prepare"
CASES: tuple[Case, ...] = (
    # ------------------------------------------------------------------ prepare
    Case(P, "{tmp}/nope.edf --out {tmp}/s", 2, "does not exist",
         "check the path", leaves=("{tmp}/s",)),
    Case(P, "{good} --out {tmp}/s --set filter.lfreq=1", 2,
         "unknown config key 'filter.lfreq'. Did you mean 'filter.l_freq'",
         "use the suggested key", leaves=("{tmp}/s",)),
    Case(P, "{good} --out {tmp}/s --set windows.length_s=abc", 2,
         "windows.length_s='abc' is not valid; expected float", "give a number",
         leaves=("{tmp}/s",)),
    Case(P, "{good} --out {tmp}/s --set windows.length_s=1.5", 2,
         "is not a whole number of 1-s patches", "use whole seconds", leaves=("{tmp}/s",)),
    Case(P, "{good} --out {tmp}/s --set filter.h_freq=150", 2, "filter.h_freq must be < 100.0",
         "the output is 200 Hz: low-pass below 100 Hz", leaves=("{tmp}/s",)),
    Case(P, "{good} --out {tmp}/s --config {tmp}/missing.toml", 2, "does not exist",
         "check the config path", leaves=("{tmp}/s",)),
    Case(P, "{good} --out {tmp}/s --set labels.mode=events", 2,
         "labels.mode='events' needs labels.events", "map annotation names to labels",
         leaves=("{tmp}/s",)),
    Case(P, "{good} --out {tmp}/s --set channels.nearest_1020=true", 2,
         "need channels.positions", "set channels.positions=file or an MNE montage name",
         leaves=("{tmp}/s",)),
    Case(P, "{junk} --out {tmp}/s", 1, "recordings skipped: unreadable 1",
         "the file is not EEG or is damaged; `csbrain check FILE` shows why"),
    Case(P, "{loud} --out {tmp}/s --set windows.length_s=4", 1,
         "amplitude 5 (keep them with: reject.max_abs=null",
         "raw consumer EEG exceeds 100 µV: reject.max_abs=null or a larger bound"),
    Case(P, "{good} --out {tmp}/s --set windows.length_s=4 --set input.unit=uV", 1,
         "values in volts read as µV", "set input.unit to the unit of the numbers"),
    Case(P, "{good} --out {tmp}/s", 1, "recordings skipped: too_short 1",
         "a 20-s recording and 30-s windows: set windows.length_s=4"),
    Case(P, "{unknown_ch} --out {tmp}/s --set windows.length_s=4", 1,
         "'Xq1' is not a 10-05 electrode name", "channels.exclude=Xq1, or channels.positions"),
    Case(P, "{good} --out {tmp}/s --set windows.length_s=4 --set channels.pick=Cz,Pz", 1,
         "none of the requested channels", "pick channels the recording has"),
    Case(P, "{good} --out {tmp}/s --set windows.length_s=4 --set reference=M1", 1,
         "reference channels ['M1'] are not in the recording", "reference existing channels"),
    Case(P, "{good} --out {tmp}/s --set windows.length_s=4 --set filter.l_freq=70 "
            "--set filter.h_freq=null", 1, "sfreq_too_low 1",
         "a high-pass above the recording's Nyquist frequency cannot apply: lower it"),
    Case(P, "{good} --out {tmp}/s --set windows.length_s=4 --set labels.mode=events "
            "--set labels.events=face:0", 1, "no_labels 1",
         "the recording has no such annotation: `csbrain check` lists them"),
    Case(P, "{good} --out {tmp}/s --set windows.length_s=4 --set labels.mode=recording "
            "--set labels.recording=good_:0", 1,
         "labels.recording keys that matched no recording: good_",
         "keys match whole recording ids, or are glob patterns such as '*task-EC*'"),
    Case(P, "{trunc_edf} --out {tmp}/s --set windows.length_s=4", 1, "is truncated",
         "input.allow_truncated=true keeps its readable part"),
    Case(P, "{good} --out {tmp}/s --set windows.length_s=5", 2,
         "different preprocessing parameters (windows.length_s: 4.0 != 5.0)",
         "choose a new --out, or --overwrite", setup=(
             "prepare {good} --out {tmp}/s --set windows.length_s=4",)),
    Case(P, "{good} --out {afile} --set windows.length_s=4", 2,
         "exists and is not a csbrain window store", "choose a new --out path"),
    Case(P, "{good} --out {afile}/s --set windows.length_s=4", 2, "cannot create store",
         "--out must be a folder you can create"),
    Case(P, "{good} --out {tmp} --set windows.length_s=4", 2,
         "exists and is not a csbrain window store", "choose a new or empty --out folder",
         setup=("prepare {good} --out {tmp}/inner --set windows.length_s=4",)),
    Case(P, "{good} --out {tmp}/s --set store.clevel=12", 2, "store.clevel must be <= 9",
         "a compression level 0-9", leaves=("{tmp}/s",)),
    # ------------------------------------------------------------------ check
    Case("check", "{junk}", 1, "WOULD BE SKIPPED [unreadable]", "the file is not EEG"),
    Case("check", "{loud} --set windows.length_s=4", 1, "option: amplitude: reject.max_abs=null",
         "apply the option shown"),
    Case("check", "{good} --set input.unit=uV --set windows.length_s=4", 1,
         "WOULD BE SKIPPED [implausible_amplitude]", "set input.unit to the unit of the numbers"),
    Case("check", "{tmp}/nope.edf", 2, "does not exist", "check the path"),
    Case("check", "{good} --set filter.hfreq=40", 2, "unknown config key 'filter.hfreq'",
         "use the suggested key"),
    # ------------------------------------------------------------------ pretrain
    Case("pretrain", "--data {tmp}/nostore --out {tmp}/r " + TINY, 2, "does not exist",
         "prepare a store first", leaves=("{tmp}/r",)),
    Case("pretrain", "--data {srcdir} --out {tmp}/r " + TINY, 2,
         "is not a csbrain window store", "give the store folder, not the recordings",
         leaves=("{tmp}/r",)),
    Case("pretrain", "--data {store} --out {tmp}/r --set lrr=0.1 " + TINY, 2,
         "unknown config key 'lrr'", "use the suggested key", leaves=("{tmp}/r",)),
    Case("pretrain", "--data {store} --out {afile}/r " + TINY, 2, "is not writable",
         "choose a folder you can write to"),
    Case("pretrain", "--data {store} --out {tmp}/r --resume " + TINY, 2,
         "has no trainer_state.pt", "start the run without --resume", leaves=("{tmp}/r",)),
    Case("pretrain", "--data {empty_store} --out {tmp}/r " + TINY, 2, "holds no window",
         "prepare recordings into the store first", leaves=("{tmp}/r",)),
    # ------------------------------------------------------------------ finetune
    Case("finetune", "--data {unlabelled} --out {tmp}/r " + TINY, 2, "has no labels",
         "prepare with labels.mode=events, recording or trials", leaves=("{tmp}/r",)),
    Case("finetune", "--data {store} --out {tmp}/r --init {notes} " + TINY, 2,
         "cannot read checkpoint", "give a model folder or a released .pth",
         leaves=("{tmp}/r",)),
    Case("finetune", "--data {store} --out {tmp}/r --init {tmp} " + TINY, 2,
         "is not a csbrain model folder", "give a model folder (config.json + "
         "model.safetensors)", leaves=("{tmp}/r",)),
    Case("finetune", "--data {store} --out {run} " + TINY, 2, "already holds a run",
         "--resume to continue it, or a new --out"),
    Case("finetune", "--data {store} --out {run} --resume --set lr=0.5 --set max_steps=1 "
         + TINY, 2, "with a different configuration",
         "resume with the run's options (only progress, device, ... may change)"),
    Case("finetune", "--data {store} --out {tmp}/r --set split.test=zz " + TINY, 2,
         "are not recording ids of the data", "name ids that the store holds",
         leaves=("{tmp}/r",)),
    Case("finetune", "--data {store} --out {tmp}/r --set split.test_fraction=1.5 " + TINY, 2,
         "split.test_fraction must be <= 1.0", "a fraction between 0 and 1",
         leaves=("{tmp}/r",)),
    Case("finetune", "--data {store} --out {tmp}/r --set task=regresion " + TINY, 2,
         "task='regresion' is not valid; expected one of", "a value the message lists",
         leaves=("{tmp}/r",)),
    Case("finetune", "--data {store} --out {tmp}/r --init {trunc_model} " + TINY, 2,
         "model.safetensors", "the weights file is truncated: copy it again",
         leaves=("{tmp}/r",)),
    Case("finetune", "--data {store} --out {tmp}/r --set sequence_length=500 " + TINY, 2,
         "sequence_length=500: no recording of", "a sequence_length the recordings hold",
         leaves=("{tmp}/r",)),
    Case("finetune", "--data {store} --out {tmp}/r --set sequence_length=2 --set head=mean_bn "
         + TINY, 2, "head='mean_bn' is not allowed with sequence_length=2",
         "head=flatten or head=mean", leaves=("{tmp}/r",)),
    # ------------------------------------------------------------------ evaluate
    Case("evaluate", "--model {tmp}/nomodel --data {store}", 2, "is not a csbrain model folder",
         "give a run or model folder"),
    Case("evaluate", "--model {run} --data {tmp}/nostore", 2, "does not exist",
         "give a prepared store"),
    Case("evaluate", "--model {run} --data {store_h30}", 2, "was trained on data prepared "
         "differently", "prepare the data with the model's preprocessing"),
    Case("evaluate", "--model {run} --data {store} --out {afile}/m.json", 2, "cannot write",
         "choose a writable --out"),
    # ------------------------------------------------------------------ predict
    Case("predict", "{rec_a} --model {run} --out {afile}/p.csv", 2, "cannot write",
         "choose a writable --out"),
    Case("predict", "{rec_a} --model {run} --out {tmp}/p.csv --set filter.h_freq=30", 2,
         "but the model records its own preprocessing", "drop the preprocessing options",
         leaves=("{tmp}/p.csv",)),
    Case("predict", "{junk} --model {run} --out {tmp}/p.csv", 2, "[unreadable]",
         "the file is not EEG or is damaged", leaves=("{tmp}/p.csv",)),
    Case("predict", "{good} --model {run} --out {tmp}/p.csv", 2, "reads 4 channels",
         "prepare recordings with the model's channels", leaves=("{tmp}/p.csv",)),
    Case("predict", "{tmp}/nope.edf --model {run} --out {tmp}/p.csv", 2, "does not exist",
         "check the path", leaves=("{tmp}/p.csv",)),
    # ------------------------------------------------------------------ embed
    Case("embed", "{rec_a} --model {run} --out {tmp}/e.txt", 2, "must end with .npy or .npz",
         "write .npy or .npz", leaves=("{tmp}/e.txt",)),
    Case("embed", "{loud} --model {bare14} --out {tmp}/e.npy --set windows.length_s=4", 2,
         "no window could be embedded", "apply the option the message names",
         leaves=("{tmp}/e.npy",)),
    Case("embed", "{good} --model {notes} --out {tmp}/e.npy", 2, "cannot read checkpoint",
         "give a model folder or a released .pth", leaves=("{tmp}/e.npy",)),
    Case("embed", "{good} --model {bare14} --out {tmp}/e.npy --set pooled=maybe", 2,
         "pooled='maybe' is not valid; expected bool", "true or false", leaves=("{tmp}/e.npy",)),
    # ------------------------------------------------------------------ info, convert, probe
    Case("info", "{tmp}/nomodel", 2, "does not exist", "check the path"),
    Case("info", "{notes}", 2, "cannot read checkpoint", "give a model folder or .pth"),
    Case("info", "{notes}", 2, "is not a PyTorch checkpoint", "give a model folder or .pth",
         absent="weights_only=False"),
    Case("convert", "{tmp}/none.pth {tmp}/out", 2, "does not exist", "check the path",
         leaves=("{tmp}/out",)),
    Case("convert", "{notes} {tmp}/out", 2, "cannot read checkpoint", "give a released .pth",
         leaves=("{tmp}/out",)),
    Case("probe", "--model {bare} --data {tmp}/nostore", 2, "does not exist",
         "prepare a store first"),
    Case("probe", "--model {bare} --data {store} --json {afile}/r.json", 2, "cannot write",
         "choose a writable --json path"),
    Case("embed", "{notes} --model {bare} --out {tmp}/e.npy", 2, "not a valid .txt file",
         "give EEG files (EDF, BDF, FIF, .set, .vhdr, GDF, CNT, .ts)",
         leaves=("{tmp}/e.npy",)),
    Case("datasets", "--fetch nosuch", 2, "dataset 'nosuch' is unknown",
         "`csbrain datasets` lists them"),
    # ------------------------------------------------------------------ Python API
    Case("api", "CSBrain(x, mask=torch.rand(B, C, P))", "TypeError",
         "mask must be a boolean tensor", "mask = torch.rand(B, C, P) < ratio"),
    Case("api", "CSBrain(x[:0])", "ValueError", "x has an empty batch",
         "pass at least one window"),
    Case("api", "CSBrain(x.long())", "TypeError", "expected a floating-point tensor",
         "model units are floats"),
    Case("api", "CSBrain(x.numpy())", "TypeError", "x must be a torch.Tensor",
         "torch.from_numpy(x), or csbrain.data.to_model_input"),
    Case("api", "to_model_input(volts, sfreq=128, ch_names=..., unit='uV')", "ValueError",
         "values in volts read as µV", "unit= the unit of the numbers"),
    Case("api", "to_model_input(volts, sfreq=128, ch_names=...)", "ValueError",
         "unit=None: an array needs unit=", "give the unit"),
    Case("api", "to_model_input(10-s array, window_s=60)", "ValueError",
         "shorter than one window of 60 s", "a shorter window_s"),
    Case("api", "LMDBWindows(lmdb with a pickled os.system value)[0]", "ValueError",
         "is not allowed", "LMDB values may hold only arrays, numbers, strings, lists, dicts"),
    Case("api", "recording_label('rec_b', {'*rec*': 0, 'rec_b': 1})", "RecordingError",
         "with different labels", "make the keys exact or the patterns disjoint"),
    Case("api", "WindowDataset(folder of recordings)", "StoreError",
         "is not a csbrain window store", "prepare a store and open that"),
    Case("api", "Montage.from_names(['Fpp1', 'Cz'])", "CSBrainError",
         "is not a 10-05 electrode name; closest: Fp1", "use a 10-05 name or give positions"),
    Case("api", "load_config(PrepConfig, overrides=['reject.max_ab=1'])", "ConfigError",
         "Did you mean 'reject.max_abs'", "use the suggested key"),
)


#: How the workspace files of the rows read in the troubleshooting table.
DOC_NAMES: dict[str, str] = {
    "good": "rec.edf", "loud": "loud.edf", "unknown_ch": "xq1.edf", "trunc_edf": "cut.edf",
    "junk": "junk.edf", "notes": "notes.txt", "afile": "a_file", "srcdir": "recordings/",
    "store": "store", "unlabelled": "unlabelled-store", "store_h30": "other-store",
    "empty_store": "empty-store", "run": "ft-run", "bare": "model/", "bare14": "model/",
    "trunc_model": "cut-model/", "rec_a": "new.edf", "tmp": ".",
}
#: What those files are.
DOC_LEGEND = (
    "`rec.edf`: a 20-s, 14-channel recording at 128 Hz (a consumer headset); `loud.edf`: the "
    "same at 300 µV; `xq1.edf`: a channel `Xq1` that is no electrode name; `cut.edf`: half an "
    "EDF; `junk.edf`, `notes.txt`: not EEG; `a_file`: a file where a folder is needed; "
    "`store`: a labelled window store of 4-channel recordings; `ft-run`: a model fine-tuned on "
    "it; `new.edf`: a recording with the store's channels; `model/`: a model folder without "
    "preprocessing (as `csbrain convert` writes).")


def troubleshooting_markdown() -> str:
    """The troubleshooting table, generated from :data:`CASES` (docs/troubleshooting.md)."""
    lines = ["# Troubleshooting", "",
             "Generated from the bad-input catalogue (`tests/bad_inputs.py`, run by "
             "`tests/test_bad_inputs.py`); regenerate with",
             "`python -m tests.bad_inputs > docs/troubleshooting.md`. Exit status 2: a one-line "
             "error; 1: the command ran but nothing came out of the data. `csbrain check FILE` "
             "shows what preparation will do before any work.", "", DOC_LEGEND, "",
             "| command | input | exit | message contains | what to do |",
             "|---|---|---|---|---|"]
    for c in CASES:
        if c.known_gap:
            continue
        args = c.args if c.command == "api" else c.args.replace(TINY, "").format(
            **DOC_NAMES).replace("./", "").strip()
        lines.append(f"| {c.command} | `{args}` | {c.code} | {c.phrase.replace('|', '/')} | "
                     f"{c.fix} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(troubleshooting_markdown(), end="")
